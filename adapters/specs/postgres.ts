/** The PostgreSQL sink's spec: its options (server, table, schema handling, batching) and its table. */
import type { SinkOptionProblem, SinkSpec } from '../../rules/model/sink-spec.js'

export const DEFAULT_BATCH = { max_rows: 500, max_wait_ms: 100 }

/** The PostgreSQL sink's options, as the schema below declares them (defaults filled in). */
export interface PostgresSinkOptions {
  url: string
  table?: string
  schema: 'auto' | 'manual'
  batch: { max_rows?: number, max_wait_ms?: number }
  connect_timeout_ms: number
}

/** A column type as `columns:` may name it: words, digits, parentheses and commas (no quotes, no `;`). */
export const COLUMN_TYPE = '^[A-Za-z][A-Za-z0-9_ ]*(\\([0-9, ]+\\))?(\\[\\])?$'

function validatePostgres (options: Record<string, unknown>): SinkOptionProblem[] {
  const url = options.url
  if (typeof url !== 'string') return []
  try {
    const parsed = new URL(url)
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') return [{ path: ['url'], message: `'${redacted(url)}': the scheme must be postgres:// or postgresql://` }]
  } catch {
    return [{ path: ['url'], message: `'${redacted(url)}' is not a URL; write postgres://user@host:5432/database` }]
  }
  return []
}

/** A URL without its password, for messages and logs. */
export function redacted (url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@/]*@/, '$1:***@')
}

const table = {
  type: 'string',
  minLength: 1,
  maxLength: 127,
  description: 'Table template, `name` or `schema.name` (letters, digits, `_`; `{capture}` fills in per message, e.g. `readings_{site}`). An output may give its own `table`.',
  examples: ['readings']
}

export const postgresSinkSpec: SinkSpec = {
  type: 'postgres',
  description: 'Writes each message as a row of a PostgreSQL table: the time, the captures and the payload\'s fields, in batches of one statement each; creates the table and its columns unless `schema: manual`.',
  options: {
    url: {
      type: 'string',
      minLength: 1,
      // eslint-disable-next-line no-template-curly-in-string -- the `${env:NAME}` syntax, shown as written
      description: 'Connection URL. Keep a password out of the file with `${env:NAME}`.',
      // eslint-disable-next-line no-template-curly-in-string -- as above
      examples: ['postgres://signalbox@127.0.0.1:5432/plant', '${env:SIGNALBOX_PG_URL}']
    },
    table,
    schema: {
      enum: ['auto', 'manual'],
      default: 'auto',
      description: '`auto`: a missing table is created (types from the first row or `columns`, with an index on the captures and time) and a new field adds a column. `manual`: no DDL; a field the table lacks is dropped from the row, logged and counted.'
    },
    batch: {
      type: 'object',
      additionalProperties: false,
      properties: {
        max_rows: { type: 'integer', minimum: 1, maximum: 50000, default: DEFAULT_BATCH.max_rows, description: 'Most rows per statement.' },
        max_wait_ms: { type: 'integer', minimum: 0, maximum: 60000, default: DEFAULT_BATCH.max_wait_ms, description: 'How long a batch waits to fill before it is written.' }
      },
      default: DEFAULT_BATCH,
      description: 'Rows are written in batches, one statement per batch.'
    },
    connect_timeout_ms: { type: 'integer', minimum: 100, maximum: 600000, default: 5000, description: 'How long a connection attempt may take.' }
  },
  required: ['url'],
  address: { field: 'table', syntax: 'table', fallback: 'none' },
  outputOptions: {
    table,
    time: { description: 'JsonLogic expression for the row\'s `time`: epoch seconds or milliseconds, or an ISO 8601 string. Default: when the message arrived.', examples: [{ var: 'payload.ts' }] },
    columns: {
      type: 'object',
      additionalProperties: { type: 'string', pattern: COLUMN_TYPE },
      description: 'Column types for a table this output creates, by field (`celsius: double precision`); other fields take theirs from the first row.'
    }
  },
  expressions: ['time'],
  validate: validatePostgres
}
