/**
 * PostgreSQL sink (`pg`). A batch becomes one INSERT per table, whatever its size: the rows go as
 * one jsonb parameter that jsonb_populate_recordset spreads over the table's own column types (no
 * 65,535-parameter limit, no type guessing here). A batch counts as delivered when its statement
 * commits. Connection, resource and serialization errors (SQLSTATE classes 08, 40, 53, 57, or no
 * SQLSTATE: the network) are retried with backoff; data errors (21, 22, 23, 42, 0A) are the rows'
 * own: the batch is halved until only the refused rows remain, and those are dead-lettered with
 * the SQLSTATE and the server's message while the rest land. A logged message's id goes to
 * `msg_id`, unique, so a replay writes each row once.
 */
import pg from 'pg'
import { byAddress, DeliveryError, donePrefix, QueuedSink, type Rejection } from '../queued-sink.js'
import type { SinkDefinition } from '../../rules/model/sink-spec.js'
import { typedSinkType, type Delivery, type SinkContext, type SinkCounters, type SinkType } from '../sink.js'
import { DEFAULT_BATCH, postgresSinkSpec, redacted, type PostgresSinkOptions } from '../specs/postgres.js'
import { columnTypeOf, ID_COLUMN, MAX_COLUMN_BYTES, quoteIdent, quoteTable, rowOf, TIME_COLUMN, type Row } from './postgres-row.js'

const PROBE_FIRST_MS = 200
const PROBE_MAX_MS = 5_000
/** SQLSTATE classes of errors that are the rows' own: retrying the same rows cannot help. */
const PERMANENT_CLASSES: ReadonlySet<string> = new Set(['21', '22', '23', '42', '0A'])
const TRANSIENT_CLASSES: ReadonlySet<string> = new Set(['08', '40', '53', '57'])

interface PgError extends Error { code?: string, detail?: string }

/** What the sink knows of a table: its columns and their types, and whether msg_id is unique. */
interface TableInfo {
  columns: Map<string, string>
  uniqueId: boolean
}

/** A table that cannot be created or altered: its rows are refused with this reason (reported once). */
class TableError extends Error {}

function sqlstate (err: unknown): string | undefined {
  const code = (err as PgError).code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

function isPermanent (err: unknown): boolean {
  const code = sqlstate(err)
  return code !== undefined && PERMANENT_CLASSES.has(code.slice(0, 2))
}

/** Connection, resource, serialization or operator errors, or none from the server (the network): worth a retry. */
function isTransient (err: unknown): boolean {
  const code = sqlstate(err)
  return code === undefined || TRANSIENT_CLASSES.has(code.slice(0, 2))
}

function describe (err: unknown): string {
  const code = sqlstate(err)
  const message = (err as Error).message
  return code === undefined ? message : `SQLSTATE ${code}: ${message}`
}

class PostgresSink extends QueuedSink {
  readonly type = 'postgres'
  private readonly pool: pg.Pool
  private readonly tables = new Map<string, TableInfo>()
  private readonly reported = new Set<string>()
  private fieldsDropped = 0
  private closing = false
  private probing = false

  constructor (definition: SinkDefinition, private readonly options: PostgresSinkOptions, context: SinkContext) {
    super(definition, context, { maxBatch: options.batch.max_rows ?? DEFAULT_BATCH.max_rows, lingerMs: options.batch.max_wait_ms ?? DEFAULT_BATCH.max_wait_ms })
    this.pool = new pg.Pool({ connectionString: options.url, max: 2, connectionTimeoutMillis: options.connect_timeout_ms, application_name: 'signalbox', idleTimeoutMillis: 30_000 })
    // An idle connection the server dropped: the next query opens another.
    this.pool.on('error', (err) => this.logger.debug({ err: err.message }, 'idle PostgreSQL connection lost'))
  }

  override counters (): SinkCounters {
    return { ...super.counters(), fieldsDropped: this.fieldsDropped }
  }

  protected async connect (): Promise<void> {
    this.probe()
  }

  /** Tries the server until it answers, then marks the sink up; never blocks start (the server may be down). */
  private probe (): void {
    if (this.probing || this.closing) return
    this.probing = true
    ;(async () => {
      let wait = PROBE_FIRST_MS
      while (!this.closing) {
        try {
          await this.pool.query('SELECT 1')
          this.markUp()
          break
        } catch (err) {
          this.markDown(`${redacted(this.options.url)}: ${describe(err)}`)
          await new Promise((resolve) => setTimeout(resolve, wait).unref())
          wait = Math.min(wait * 2, PROBE_MAX_MS)
        }
      }
      this.probing = false
    })().catch((err: Error) => this.logger.error({ err: err.message }, 'PostgreSQL probe failed'))
  }

  protected async deliver (batch: Delivery[]): Promise<Rejection[]> {
    const rejected: Rejection[] = []
    const done = new Set<number>()
    // One statement per table, however the batch's tables interleave.
    for (const indices of byAddress(batch)) {
      try {
        const group = indices.map((i) => batch[i])
        for (const r of await this.writeTable(group[0].address, group)) rejected.push({ index: indices[r.index], reason: r.reason })
        for (const i of indices) done.add(i)
      } catch (err) {
        this.markDown(`${redacted(this.options.url)}: ${describe(err)}`)
        this.probe()
        throw new DeliveryError(describe(err), donePrefix(done), rejected, { cause: err })
      }
    }
    return rejected
  }

  /** Writes one table's rows; returns the refused ones; throws when the whole write should be retried. */
  private async writeTable (table: string, deliveries: Delivery[]): Promise<Rejection[]> {
    const rejected: Rejection[] = []
    const rows: Array<{ index: number, row: Row }> = []
    deliveries.forEach((d, index) => {
      const made = rowOf({ payload: d.payload, params: d.params, time: d.values?.time, receivedAt: d.time, id: d.id })
      if ('refused' in made) rejected.push({ index, reason: made.refused })
      else rows.push({ index, row: made.row })
    })
    if (rows.length === 0) return rejected
    let info: TableInfo
    try {
      info = await this.prepareTable(table, deliveries, rows.map((r) => r.row))
    } catch (err) {
      if (!(err instanceof TableError)) throw err
      for (const r of rows) rejected.push({ index: r.index, reason: err.message })
      return rejected
    }
    this.fitRows(table, info, rows.map((r) => r.row))
    await this.insertSplitting(table, info, rows, rejected)
    return rejected.sort((a, b) => a.index - b.index)
  }

  /** Inserts the rows; on a data error, halves them until the refused rows stand alone. */
  private async insertSplitting (table: string, info: TableInfo, rows: Array<{ index: number, row: Row }>, rejected: Rejection[]): Promise<void> {
    try {
      await this.insert(table, info, rows.map((r) => r.row))
    } catch (err) {
      if (!isPermanent(err)) throw err
      if (rows.length === 1) { rejected.push({ index: rows[0].index, reason: describe(err) }); return }
      const half = Math.ceil(rows.length / 2)
      await this.insertSplitting(table, info, rows.slice(0, half), rejected)
      await this.insertSplitting(table, info, rows.slice(half), rejected)
    }
  }

  private async insert (table: string, info: TableInfo, rows: Row[]): Promise<void> {
    const names = new Set<string>()
    for (const row of rows) for (const name of Object.keys(row)) names.add(name)
    const columns = [...names].map(quoteIdent).join(', ')
    const conflict = info.uniqueId && names.has(ID_COLUMN) ? ` ON CONFLICT (${quoteIdent(ID_COLUMN)}) DO NOTHING` : ''
    const target = quoteTable(table)
    await this.pool.query(`INSERT INTO ${target} (${columns}) SELECT ${columns} FROM jsonb_populate_recordset(NULL::${target}, $1::jsonb)${conflict}`, [JSON.stringify(rows)])
  }

  /** The table as it must be for these rows: created or widened with `schema: auto`, looked up with `manual`. */
  private async prepareTable (table: string, deliveries: Delivery[], rows: Row[]): Promise<TableInfo> {
    let info = this.tables.get(table) ?? await this.lookUp(table)
    if (this.options.schema === 'manual') {
      if (info === undefined) throw this.tableError(table, `table ${table} does not exist (schema: manual creates none)`)
      return info
    }
    const declared = declaredColumns(deliveries)
    const wanted = new Map<string, string>()
    for (const row of rows) {
      for (const [name, value] of Object.entries(row)) {
        if (wanted.has(name) || info?.columns.has(name) === true || Buffer.byteLength(name) > MAX_COLUMN_BYTES) continue
        const type = name === TIME_COLUMN ? 'timestamptz' : declared.get(name) ?? columnTypeOf(value)
        if (type !== undefined) wanted.set(name, type)
      }
    }
    if (info !== undefined && wanted.size === 0) return info
    try {
      if (info === undefined) await this.create(table, deliveries, wanted)
      else await this.widen(table, wanted)
    } catch (err) {
      // DDL the server refuses (no such schema, no privilege, a name taken by a view) stays refused.
      if (isTransient(err)) throw err
      throw this.tableError(table, `table ${table} cannot be ${info === undefined ? 'created' : 'altered'}: ${describe(err)}`)
    }
    this.tables.delete(table)
    info = await this.lookUp(table)
    if (info === undefined) throw this.tableError(table, `table ${table} is not there after CREATE TABLE`)
    return info
  }

  private async create (table: string, deliveries: Delivery[], wanted: Map<string, string>): Promise<void> {
    const captures = Object.keys(deliveries[0].params ?? {})
    const columns = [`${quoteIdent(TIME_COLUMN)} timestamptz NOT NULL`]
    for (const [name, type] of wanted) if (name !== TIME_COLUMN && name !== ID_COLUMN) columns.push(`${quoteIdent(name)} ${type}`)
    columns.push(`${quoteIdent(ID_COLUMN)} text UNIQUE`)
    const target = quoteTable(table)
    const index = quoteIdent(`${table.split('.').at(-1)!}_key_time`)
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      await client.query(`CREATE TABLE IF NOT EXISTS ${target} (${columns.join(', ')})`)
      await client.query(`CREATE INDEX IF NOT EXISTS ${index} ON ${target} (${[...captures.map(quoteIdent), `${quoteIdent(TIME_COLUMN)} DESC`].join(', ')})`)
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release()
    }
    this.logger.info({ table, columns: Object.fromEntries(wanted) }, 'table created')
  }

  private async widen (table: string, wanted: Map<string, string>): Promise<void> {
    const target = quoteTable(table)
    const added = [...wanted].map(([name, type]) => `ADD COLUMN IF NOT EXISTS ${quoteIdent(name)} ${type}`)
    await this.pool.query(`ALTER TABLE ${target} ${added.join(', ')}`)
    this.logger.info({ table, added: Object.fromEntries(wanted) }, 'columns added')
  }

  /** Drops the fields the table has no column for (counted, logged once per field). */
  private fitRows (table: string, info: TableInfo, rows: Row[]): void {
    for (const row of rows) {
      for (const name of Object.keys(row)) {
        if (info.columns.has(name)) continue
        const empty = row[name] === null
        delete row[name]
        // A null needs no column: it is what a missing column reads as anyway.
        if (empty) continue
        this.fieldsDropped++
        const key = `${table}\u0000${name}`
        if (this.reported.has(key)) continue
        this.reported.add(key)
        this.logger.warn({ table, field: name }, `field '${name}' dropped: table ${table} has no such column${this.options.schema === 'manual' ? ' (schema: manual)' : ''}`)
      }
    }
  }

  private async lookUp (table: string): Promise<TableInfo | undefined> {
    const parts = table.split('.')
    const [schema, name] = parts.length > 1 ? [parts[0], parts[1]] : [undefined, parts[0]]
    const { rows } = await this.pool.query<{ column_name: string, data_type: string, unique_id: boolean }>(
      `SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS data_type,
              EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indnatts = 1 AND i.indkey[0] = a.attnum) AS unique_id
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE c.relname = $1 AND n.nspname = COALESCE($2, current_schema()) AND a.attnum > 0 AND NOT a.attisdropped`, [name, schema ?? null])
    if (rows.length === 0) return undefined
    const info: TableInfo = { columns: new Map(rows.map((r) => [r.column_name, r.data_type])), uniqueId: rows.some((r) => r.column_name === ID_COLUMN && r.unique_id) }
    this.tables.set(table, info)
    return info
  }

  private tableError (table: string, message: string): TableError {
    if (!this.reported.has(table)) {
      this.reported.add(table)
      this.logger.error({ table }, message)
    }
    return new TableError(message)
  }

  protected async disconnect (): Promise<void> {
    this.closing = true
    await this.pool.end()
  }
}

/** The `columns:` types the outputs of these deliveries declare. */
function declaredColumns (deliveries: Delivery[]): Map<string, string> {
  const declared = new Map<string, string>()
  for (const d of deliveries) {
    const columns = d.output?.columns as Record<string, string> | undefined
    if (columns !== undefined) for (const [name, type] of Object.entries(columns)) if (!declared.has(name)) declared.set(name, type)
  }
  return declared
}

export const postgresSinkType: SinkType = {
  ...typedSinkType<PostgresSinkOptions>(postgresSinkSpec, (definition, options, context) => new PostgresSink(definition, options, context)),
  describe: (d) => {
    const made = rowOf({ payload: d.payload, params: d.params, time: d.values?.time, receivedAt: d.time, id: d.id })
    return 'refused' in made ? `no row: ${made.refused}` : `row ${JSON.stringify(made.row)}`
  }
}
