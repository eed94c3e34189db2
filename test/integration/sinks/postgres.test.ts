// PostgreSQL sink against a real PostgreSQL (a cluster of the test's own, test/helpers/postgres.ts):
// the shared contract; rows, types and columns from rules; a refused row dead-lettered while the
// rest of its batch lands; the server stopped mid-stream; schema: manual; ids that make a replay
// write each row once.
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { postgresSinkType } from '../../../adapters/sinks/postgres.js'
import type { Delivery, Sink } from '../../../adapters/sink.js'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mosquittoPub, startRun } from '../../helpers/cli.js'
import { until } from '../../helpers/latch.js'
import { connect, subscribe } from '../../helpers/mqtt.js'
import { startPostgres, type TestPostgres } from '../../helpers/postgres.js'
import { assertAccounted, delivery, describeSinkContract } from '../../helpers/sink-contract.js'
import { startSignalbox, tempDir } from '../../helpers/signalbox.js'
import { onTeardown } from '../../helpers/teardown.js'

const silent = pino({ level: 'silent' })

function postgresSink (options: Record<string, unknown>): Sink {
  const sink = postgresSinkType.create({ name: 'db', type: 'postgres', options, baseDir: '/', declaredAt: 'test', implicit: false }, { logger: silent })
  onTeardown(async () => await sink.close(0))
  return sink
}

async function count (db: TestPostgres, sql: string): Promise<number> {
  return Number((await db.query<{ n: string }>(sql))[0].n)
}

describeSinkContract('postgres', async () => {
  const db = await startPostgres()
  return {
    address: 'contract',
    create: (queueSize) => postgresSink({ url: db.url, queue_size: queueSize }),
    received: async (n, ms = 10_000) => {
      let rows: Array<{ seq: number }> = []
      // Rows of one writer, never updated: the heap keeps them in insertion order.
      await until(async () => {
        rows = await db.query<{ seq: number }>('SELECT seq FROM contract ORDER BY ctid').catch(() => [])
        return rows.length >= n
      }, ms, `${n} rows in contract`)
      return rows.map((r) => JSON.stringify({ seq: r.seq }))
    },
    down: async () => await db.stop(),
    up: async () => await db.start()
  }
})

describe('postgres sink', function () {
  this.timeout(60_000)
  let db: TestPostgres
  beforeEach(async () => { db = await startPostgres() })

  it('writes one row per message: time, captures, payload fields typed from the first row, or from columns', async () => {
    const sb = await startSignalbox(`version: 1
sinks:
  db:
    type: postgres
    url: ${db.url}
rules:
  - name: readings
    from: sensors/+room/+kind
    set:
      celsius: { var: payload.celsius }
      ok: { var: payload.ok }
      label: { var: payload.label }
      extra: { var: payload.extra }
      missing: { var: payload.nothing }
    to:
      - sink: db
        table: readings
        columns: { label: varchar(20) }
        time: { var: payload.ts }
`)
    const client = await connect(sb.port)
    const rooms = ['kitchen', 'hall', 'attic']
    const perRoom = 700
    for (let i = 0; i < perRoom; i++) {
      for (const room of rooms) {
        await client.publishAsync(`sensors/${room}/temperature`, JSON.stringify({ celsius: 20 + i / 100, ok: i % 2 === 0, label: `n${i}`, extra: { i }, ts: 1_700_000_000 + i }), { qos: 1 })
      }
    }
    await until(async () => await count(db, 'SELECT count(*) AS n FROM readings').catch(() => 0) === rooms.length * perRoom, 20_000, 'every row')
    for (const room of rooms) assert.equal(await count(db, `SELECT count(*) AS n FROM readings WHERE room = '${room}'`), perRoom)
    const types = await db.query<{ column_name: string, data_type: string }>("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'readings' ORDER BY column_name")
    assert.deepEqual(Object.fromEntries(types.map((t) => [t.column_name, t.data_type])), {
      celsius: 'double precision', extra: 'jsonb', kind: 'text', label: 'character varying', msg_id: 'text', ok: 'boolean', room: 'text', time: 'timestamp with time zone'
    })
    const [first] = await db.query<{ time: Date, celsius: number, ok: boolean, extra: unknown, kind: string }>("SELECT time, celsius, ok, extra, kind FROM readings WHERE room = 'hall' ORDER BY time LIMIT 1")
    // The row's time is the payload's (epoch seconds), not when it was written.
    assert.equal(first.time.toISOString(), new Date(1_700_000_000_000).toISOString())
    assert.deepEqual({ celsius: first.celsius, ok: first.ok, extra: first.extra, kind: first.kind }, { celsius: 20, ok: true, extra: { i: 0 }, kind: 'temperature' })
    // A field the message lacks is NULL, never the text 'undefined'; a field no row ever had makes no column.
    assert.equal(await count(db, "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'readings' AND column_name = 'missing'"), 0)
    const index = await db.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE tablename = 'readings' AND indexname = 'readings_key_time'")
    assert.match(index[0].indexdef, /\(room, kind, "time" DESC\)/)
    assertAccounted(sb.sinks.get('db')!)
  })

  it('a payload that is not an object goes into a value column; a new field adds a column', async () => {
    const sink = postgresSink({ url: db.url, batch: { max_wait_ms: 0 } })
    await sink.start()
    await until(() => sink.health().state === 'up', 10_000, 'up')
    sink.send({ ...delivery('plain', 1), payload: Buffer.from('21.5'), params: { room: 'kitchen' } })
    assert.equal(await sink.flush(10_000), true)
    sink.send({ ...delivery('plain', 2), payload: Buffer.from('{"value": 3, "humidity": 40}'), params: { room: 'hall' } })
    assert.equal(await sink.flush(10_000), true)
    const rows = await db.query<{ room: string, value: number, humidity: number | null }>('SELECT room, value, humidity FROM plain ORDER BY ctid')
    assert.deepEqual(rows, [{ room: 'kitchen', value: 21.5, humidity: null }, { room: 'hall', value: 3, humidity: 40 }])
    assertAccounted(sink)
  })

  it('a refused row is dead-lettered with its SQLSTATE while the rest of its batch lands', async () => {
    await db.query('CREATE TABLE strict (time timestamptz NOT NULL, room text, celsius double precision CHECK (celsius < 100), msg_id text UNIQUE)')
    const sb = await startSignalbox(`version: 1
sinks:
  db:
    type: postgres
    url: ${db.url}
    batch: { max_rows: 500, max_wait_ms: 200 }
rules:
  - name: strict
    from: strict/+room
    to:
      - sink: db
        table: strict
`)
    const letters = await subscribe(sb.port, ['$signalbox/dead-letter/#'])
    const client = await connect(sb.port)
    const sent = 300
    const bad = new Set([17, 150, 299])
    await Promise.all(Array.from({ length: sent }, async (_, i) => await client.publishAsync(`strict/r${i % 3}`, JSON.stringify({ celsius: bad.has(i) ? 500 + i : i / 10 }), { qos: 1 })))
    const got = await letters.wait(bad.size, 20_000)
    assert.equal(await count(db, 'SELECT count(*) AS n FROM strict'), sent - bad.size)
    const reasons = got.map((l) => JSON.parse(l.payload) as { code: string, reason: string, payload: string, rule: string })
    assert.deepEqual(reasons.map((r) => (JSON.parse(r.payload) as { celsius: number }).celsius).sort((a, b) => a - b), [...bad].map((i) => 500 + i))
    for (const r of reasons) {
      assert.equal(r.code, 'SINK_REJECTED')
      assert.equal(r.rule, 'strict')
      assert.match(r.reason, /^sink 'db': SQLSTATE 23514: .*strict_celsius_check/)
    }
    const c = sb.sinks.get('db')!.counters()
    assert.equal(c.delivered, sent - bad.size)
    assert.equal(c.dropped.rejected, bad.size)
    assertAccounted(sb.sinks.get('db')!)
  })

  it('the server stopped for a few seconds mid-stream: every row arrives afterwards, none twice', async () => {
    const sink = postgresSink({ url: db.url, batch: { max_rows: 50, max_wait_ms: 10 } })
    await sink.start()
    await until(() => sink.health().state === 'up', 10_000, 'up')
    const send = (from: number, to: number): void => { for (let i = from; i < to; i++) sink.send({ ...delivery('outage', i), id: `m-${i}` }) }
    send(0, 500)
    await until(async () => await count(db, 'SELECT count(*) AS n FROM outage').catch(() => 0) > 0, 10_000, 'the first rows')
    await db.stop()
    send(500, 1500)
    await until(() => sink.health().state === 'down', 10_000, 'the sink to see the server gone')
    await new Promise((resolve) => setTimeout(resolve, 2000))
    send(1500, 2000)
    await db.start()
    assert.equal(await sink.flush(30_000), true)
    assert.equal(await count(db, 'SELECT count(DISTINCT seq) AS n FROM outage'), 2000)
    assert.equal(await count(db, 'SELECT count(*) AS n FROM outage'), 2000)
    const c = sink.counters()
    assert.equal(c.delivered, 2000)
    assert.ok(c.failures > 0, 'the outage was seen')
    assertAccounted(sink)
  })

  it('writes each id once: a message handled again (a replay) adds no second row', async () => {
    const sink = postgresSink({ url: db.url, batch: { max_wait_ms: 0 } })
    await sink.start()
    await until(() => sink.health().state === 'up', 10_000, 'up')
    const batch: Delivery[] = Array.from({ length: 20 }, (_, i) => ({ ...delivery('once', i), id: `inst-${i}/0/r/0` }))
    for (const d of batch) sink.send(d)
    assert.equal(await sink.flush(10_000), true)
    for (const d of batch.slice(5, 15)) sink.send(d)
    assert.equal(await sink.flush(10_000), true)
    assert.equal(await count(db, 'SELECT count(*) AS n FROM once'), 20)
    assert.equal(sink.counters().delivered, 30)
  })

  it('a table that cannot be created refuses its rows, reported once with the reason; other tables go on', async () => {
    const lines: string[] = []
    const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(line) } })
    const sink = postgresSinkType.create({ name: 'db', type: 'postgres', options: { url: db.url, batch: { max_wait_ms: 0 } }, baseDir: '/', declaredAt: 'test', implicit: false }, { logger })
    onTeardown(async () => await sink.close(0))
    await sink.start()
    await until(() => sink.health().state === 'up', 10_000, 'up')
    for (let i = 0; i < 3; i++) sink.send(delivery('nosuchschema.readings', i))
    sink.send(delivery('fine', 9))
    assert.equal(await sink.flush(10_000), true)
    sink.send(delivery('nosuchschema.readings', 4))
    assert.equal(await sink.flush(10_000), true)
    assert.equal(sink.counters().dropped.rejected, 4)
    assert.equal(sink.counters().delivered, 1)
    assert.deepEqual(await db.query('SELECT seq FROM fine'), [{ seq: 9 }])
    const reports = lines.filter((l) => l.includes('"msg":"table nosuchschema.readings cannot be created'))
    assert.equal(reports.length, 1, lines.join(''))
    assert.match(reports[0], /table nosuchschema\.readings cannot be created: SQLSTATE 3F000: schema \\"nosuchschema\\" does not exist/)
  })

  it('schema: manual touches no DDL: a missing table refuses its rows, a field without a column is dropped and counted', async () => {
    const sink = postgresSink({ url: db.url, schema: 'manual', batch: { max_wait_ms: 0 } })
    await sink.start()
    await until(() => sink.health().state === 'up', 10_000, 'up')
    sink.send(delivery('absent', 1))
    assert.equal(await sink.flush(10_000), true)
    assert.equal(sink.counters().dropped.rejected, 1)
    assert.equal(await count(db, "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'absent'"), 0)
    await db.query('CREATE TABLE narrow (time timestamptz, seq integer)')
    sink.send({ ...delivery('narrow', 7), payload: Buffer.from('{"seq": 7, "other": 1, "more": "x"}') })
    assert.equal(await sink.flush(10_000), true)
    assert.deepEqual(await db.query('SELECT seq FROM narrow'), [{ seq: 7 }])
    assert.equal(sink.counters().fieldsDropped, 2)
    assert.equal(await count(db, "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'narrow'"), 2)
  })

  it('end to end: mosquitto_pub → signalbox run → a row per reading, each with its message id, the url from an env:NAME reference', async () => {
    const rules = join(tempDir(), 'rules.yaml')
    writeFileSync(rules, `version: 1
sinks:
  db:
    type: postgres
    url: "\${env:SIGNALBOX_PG_URL}"
rules:
  - name: readings
    from: sensors/+room/temperature
    set:
      celsius: { var: payload.celsius }
    to:
      - sink: db
        table: readings
`)
    process.env.SIGNALBOX_PG_URL = db.url
    let run
    try {
      run = await startRun(['--no-watch', rules])
    } finally {
      delete process.env.SIGNALBOX_PG_URL
    }
    for (const [room, celsius] of [['kitchen', 21.5], ['hall', 19], ['kitchen', 22]] as const) mosquittoPub(run.port, `sensors/${room}/temperature`, JSON.stringify({ celsius }))
    await until(async () => await count(db, 'SELECT count(*) AS n FROM readings').catch(() => 0) === 3, 10_000, 'three rows')
    const rows = await db.query<{ room: string, celsius: number, msg_id: string }>('SELECT room, celsius, msg_id FROM readings ORDER BY ctid')
    assert.deepEqual(rows.map((r) => [r.room, r.celsius]), [['kitchen', 21.5], ['hall', 19], ['kitchen', 22]])
    for (const r of rows) assert.match(r.msg_id, /^[0-9a-f]{12}-\d+\/0\/readings\/0$/)
    run.proc.child.kill('SIGTERM')
    assert.equal(await run.proc.exited, 0)
  })
})
