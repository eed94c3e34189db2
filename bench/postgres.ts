// Where the data lands (issue 16), side by side in one run, on one PostgreSQL cluster with its
// default durability (fsync and synchronous_commit on, as a site runs it):
//  - statements: ROWS rows (time, room, seq, celsius) in batches of 500 over one connection, as the
//    sink sends them (INSERT … SELECT FROM jsonb_populate_recordset), as INSERT … SELECT FROM
//    unnest(…) arrays, as COPY FROM STDIN (pg-copy-streams, when installed with --no-save), and
//    one INSERT per row;
//  - the sink alone: ROWS deliveries handed to the postgres sink (no MQTT), until committed;
//  - end to end: a QoS 1 flood (100 in flight) into `signalbox run` whose rule writes each reading
//    to a table, beside the founding story's way (a paho-mqtt subscriber on Mosquitto inserting
//    row by row with psycopg2: bench/founding-story.py) and `psql \copy` of the same rows from a
//    file (the limit);
//  - HTTP: messages through `signalbox run` to a node:http server, one request each and batched.
// Run it alone with `npm run bench -- postgres` (add --quick for a short run).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import pg from 'pg'
import { pino } from 'pino'
import { initCluster, postgresBinDir } from '../test/helpers/postgres-cluster.js'
import { firstLine, freePort, mosquittoBinary, waitForPort, windowed } from './processes.js'
import { fmt, machine, median, quick } from './stats.js'
import { projectRoot, scriptArgs } from './root.js'
import { shipped } from './shipped.js'

const { postgresSinkType } = await shipped<typeof import('../adapters/sinks/postgres.js')>('adapters/sinks/postgres.js')

const ROWS = quick ? 20_000 : 100_000
const ROW_BY_ROW = quick ? 1_000 : 3_000
const FLOOD = quick ? 10_000 : 40_000
const FOUNDING = quick ? 1_000 : 3_000
const HTTP_MESSAGES = quick ? 5_000 : 20_000
const BATCH = 500
const IN_FLIGHT = 100
const RUNS = quick ? 1 : 3
const ROOMS = 10
const self = fileURLToPath(import.meta.url)
const cleanups: Array<() => void> = []

interface Reading { room: string, seq: number, celsius: number }

function reading (i: number): Reading {
  return { room: `room${i % ROOMS}`, seq: i, celsius: 15 + (i % 200) / 10 }
}

if (process.argv.includes('--role')) {
  const [port, count] = process.argv.slice(process.argv.indexOf('--role') + 1).map(Number)
  await publisher(port, count)
} else {
  await main()
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-bench-pg-'))
  const processes: ChildProcess[] = []
  try {
    console.log(`# Where the data lands (${machine()}; PostgreSQL ${postgresBinDir().split('/').at(-2)!} with fsync and synchronous_commit on; ${RUNS === 1 ? 'one round (--quick)' : `medians of ${RUNS} rounds`})`)
    console.log()
    const db = await startCluster(dir, processes)
    await statements(db)
    await sinkAlone(db)
    await endToEnd(db, dir, processes)
    await http(dir, processes)
  } finally {
    for (const p of processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGINT')
    await Promise.all(processes.map(async (p) => await new Promise((resolve) => { if (p.exitCode !== null || p.signalCode !== null) resolve(null); else p.once('exit', resolve) })))
    rmSync(dir, { recursive: true, force: true })
    for (const c of cleanups) c()
  }
}

async function startCluster (dir: string, processes: ChildProcess[]): Promise<string> {
  // A directory of its own under the system's: run as root, the cluster's user (nobody) must reach it.
  const clusterDir = mkdtempSync(join(tmpdir(), 'signalbox-bench-pgdata-'))
  cleanups.push(() => rmSync(clusterDir, { recursive: true, force: true }))
  const cluster = initCluster(clusterDir, await freePort())
  processes.push(spawn(cluster.postgres, cluster.args, { stdio: 'ignore', ...cluster.user }))
  for (let i = 0; ; i++) {
    try {
      await query(cluster.url, 'SELECT 1')
      return cluster.url
    } catch (err) {
      if (i > 400) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

async function query (url: string, sql: string, params?: unknown[]): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await client.query(sql, params)
  } finally {
    await client.end()
  }
}

async function freshTable (url: string, name: string): Promise<void> {
  await query(url, `DROP TABLE IF EXISTS ${name}`)
  await query(url, `CREATE TABLE ${name} (time timestamptz NOT NULL, room text, seq double precision, celsius double precision, msg_id text UNIQUE)`)
}

async function rowCount (url: string, table: string): Promise<number> {
  return Number((await query(url, `SELECT count(*) AS n FROM ${table}`)).rows[0].n)
}

/** Rows per second of one way to write, over `rows` rows; the table is made afresh first. */
async function timed (url: string, table: string, rows: number, write: (client: pg.Client, batch: Reading[], now: string) => Promise<unknown>, batchSize = BATCH): Promise<number> {
  await freshTable(url, table)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const now = new Date().toISOString()
    const start = performance.now()
    for (let i = 0; i < rows; i += batchSize) await write(client, Array.from({ length: Math.min(batchSize, rows - i) }, (_, k) => reading(i + k)), now)
    const seconds = (performance.now() - start) / 1000
    if (await rowCount(url, table) !== rows) throw new Error(`${table}: expected ${rows} rows`)
    return rows / seconds
  } finally {
    await client.end()
  }
}

async function statements (url: string): Promise<void> {
  type CopyFrom = (sql: string) => NodeJS.WritableStream
  let copyFrom: CopyFrom | undefined
  try {
    copyFrom = (await import('pg-copy-streams' as string) as { from: CopyFrom }).from
  } catch {
    copyFrom = undefined
  }
  const ways: Array<[string, (c: pg.Client, b: Reading[], now: string) => Promise<unknown>, number?, number?]> = [
    ['INSERT … SELECT FROM jsonb_populate_recordset($1) (the sink\'s)', async (c, b, now) => await c.query('INSERT INTO t (time, room, seq, celsius) SELECT time, room, seq, celsius FROM jsonb_populate_recordset(NULL::t, $1::jsonb)', [JSON.stringify(b.map((r) => ({ time: now, ...r })))])],
    ['INSERT … SELECT FROM unnest($1::timestamptz[], …)', async (c, b, now) => await c.query('INSERT INTO t (time, room, seq, celsius) SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::float8[], $4::float8[])', [b.map(() => now), b.map((r) => r.room), b.map((r) => r.seq), b.map((r) => r.celsius)])]
  ]
  if (copyFrom !== undefined) {
    const from = copyFrom
    ways.push(['COPY FROM STDIN (pg-copy-streams)', async (c, b, now) => {
      const stream = c.query(from('COPY t (time, room, seq, celsius) FROM STDIN') as never) as unknown as NodeJS.WritableStream
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject)
        stream.on('finish', () => resolve())
        stream.end(b.map((r) => `${now}\t${r.room}\t${r.seq}\t${r.celsius}\n`).join(''))
      })
    }])
  }
  ways.push(['one INSERT per row, autocommit', async (c, b, now) => await c.query('INSERT INTO t (time, room, seq, celsius) VALUES ($1, $2, $3, $4)', [now, b[0].room, b[0].seq, b[0].celsius]), ROW_BY_ROW, 1])
  const rates = new Map<string, number[]>()
  for (let run = 0; run < RUNS; run++) {
    for (const [name, write, rows, batch] of ways) rates.set(name, [...(rates.get(name) ?? []), await timed(url, 't', rows ?? ROWS, write, batch)])
  }
  const ours = median(rates.get(ways[0][0])!)
  console.log(`Statements: ${fmt(ROWS)} rows of (time, room, seq, celsius) in batches of ${BATCH}, one connection (row by row: ${fmt(ROW_BY_ROW)} rows):`)
  console.log()
  console.log('| statement | rows/s | ÷ the sink\'s |')
  console.log('| --- | ---: | ---: |')
  for (const [name] of ways) console.log(`| ${name} | ${fmt(median(rates.get(name)!))} | ${(median(rates.get(name)!) / ours).toFixed(2)}× |`)
  if (copyFrom === undefined) console.log('| COPY FROM STDIN | not installed (npm install --no-save pg-copy-streams): row skipped | |')
  console.log()
}

async function sinkAlone (url: string): Promise<void> {
  const rates: number[] = []
  for (let run = 0; run < RUNS; run++) {
    await query(url, 'DROP TABLE IF EXISTS alone')
    const sink = postgresSinkType.create({ name: 'db', type: 'postgres', options: { url, queue_size: ROWS }, baseDir: '/', declaredAt: 'bench', implicit: false }, { logger: pino({ level: 'silent' }) })
    await sink.start()
    while (sink.health().state !== 'up') await new Promise((resolve) => setTimeout(resolve, 10))
    const start = performance.now()
    for (let i = 0; i < ROWS; i++) {
      const r = reading(i)
      sink.send({ rule: 'bench', topic: `sensors/${r.room}/temperature`, address: 'alone', payload: Buffer.from(JSON.stringify({ seq: r.seq, celsius: r.celsius })), qos: 1, retain: false, hops: 1, time: Date.now(), params: { room: r.room }, id: `bench-${i}` })
    }
    if (!await sink.flush(120_000)) throw new Error('the sink did not drain')
    rates.push(ROWS / ((performance.now() - start) / 1000))
    await sink.close(1000)
    if (await rowCount(url, 'alone') !== ROWS) throw new Error('alone: rows missing')
  }
  console.log(`The sink alone: ${fmt(ROWS)} deliveries handed to the postgres sink (its defaults: batches of up to 500, table created on the first), until all are committed: **${fmt(median(rates))} rows/s**.`)
  console.log()
}

async function endToEnd (url: string, dir: string, processes: ChildProcess[]): Promise<void> {
  const rules = join(dir, 'pg-rules.yaml')
  writeFileSync(rules, `version: 1
sinks:
  db: { type: postgres, url: "${url}" }
rules:
  - name: readings
    from: sensors/+room/temperature
    set:
      seq: { var: payload.seq }
      celsius: { var: payload.celsius }
    to:
      - sink: db
        table: readings
`)
  const ours: number[] = []
  const founding: number[] = []
  const copied: number[] = []
  const mosquitto = mosquittoBinary()
  for (let run = 0; run < RUNS; run++) {
    await query(url, 'DROP TABLE IF EXISTS readings')
    const port = await freePort()
    const server = spawn(process.execPath, [join(projectRoot, 'bin', 'signalbox.js'), 'run', '--no-watch', '--log-level', 'warn', '--sys-interval', '0', '--data-dir', join(dir, `data-${run}`), '--port', String(port), rules], { stdio: 'ignore' })
    processes.push(server)
    await waitForPort(port)
    ours.push(await floodInto(url, 'readings', port, FLOOD))
    server.kill('SIGTERM')
    await new Promise((resolve) => server.once('exit', resolve))

    if (mosquitto !== undefined) {
      await freshTable(url, 'founding')
      const mport = await freePort()
      const conf = join(dir, 'mosquitto.conf')
      // No limit on the subscriber's queue: by default Mosquitto drops what passes 1,000 queued messages.
      writeFileSync(conf, `listener ${mport} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n`)
      const broker = spawn(mosquitto, ['-c', conf], { stdio: 'ignore' })
      processes.push(broker)
      await waitForPort(mport)
      const python = spawn('/usr/bin/python3', [join(projectRoot, 'bench', 'founding-story.py'), String(mport), url, 'founding'], { stdio: ['ignore', 'pipe', 'inherit'] })
      processes.push(python)
      await firstLine(python)
      founding.push(await floodInto(url, 'founding', mport, FOUNDING))
      python.kill('SIGTERM')
      broker.kill('SIGTERM')
    }

    await freshTable(url, 'copied')
    const csv = join(dir, 'rows.csv')
    const now = new Date().toISOString()
    writeFileSync(csv, Array.from({ length: FLOOD }, (_, i) => { const r = reading(i); return `${now},${r.room},${r.seq},${r.celsius}` }).join('\n') + '\n')
    const start = performance.now()
    const copy = spawnSync('psql', [url, '-q', '-c', `\\copy copied (time, room, seq, celsius) FROM '${csv}' WITH (FORMAT csv)`], { encoding: 'utf8' })
    if (copy.status !== 0) throw new Error(`psql \\copy failed: ${copy.stderr}`)
    copied.push(FLOOD / ((performance.now() - start) / 1000))
  }
  const o = median(ours)
  console.log(`End to end: readings published with QoS 1 (${IN_FLIGHT} in flight) until the table holds every row (${fmt(FLOOD)} for signalbox and for psql, ${fmt(FOUNDING)} for the row-by-row client):`)
  console.log()
  console.log('| way | rows/s | signalbox ÷ it |')
  console.log('| --- | ---: | ---: |')
  console.log(`| signalbox run → rule → postgres sink | ${fmt(o)} | 1.00× |`)
  if (founding.length > 0) console.log(`| paho-mqtt subscriber on Mosquitto, psycopg2 INSERT + commit per message (the founding story) | ${fmt(median(founding))} | ${(o / median(founding)).toFixed(1)}× |`)
  else console.log('| paho-mqtt + psycopg2 row by row | mosquitto not installed: row skipped | |')
  console.log(`| psql \\copy of the same rows from a CSV file (no MQTT: the limit) | ${fmt(median(copied))} | ${(o / median(copied)).toFixed(2)}× |`)
  console.log()
}

/**
 * Starts a publisher of `count` readings to the broker on `port`; resolves with its messages/s from
 * its first publish (the time it prints, so its start-up is not counted) until `arrived()` is true.
 */
async function flood (port: number, count: number, arrived: () => Promise<boolean>): Promise<number> {
  const child = spawn(process.execPath, [...scriptArgs(self), '--role', String(port), String(count)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const started = Number(await firstLine(child))
  const deadline = Date.now() + 300_000
  while (!await arrived()) {
    if (Date.now() > deadline) throw new Error(`not everything arrived within 5 minutes of ${fmt(count)} publishes`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const seconds = (Date.now() - started) / 1000
  if (await exited !== 0) throw new Error('the publisher failed')
  return count / seconds
}

async function floodInto (url: string, table: string, port: number, count: number): Promise<number> {
  return await flood(port, count, async () => await rowCount(url, table).catch(() => 0) >= count)
}

async function publisher (port: number, count: number): Promise<void> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
  process.stdout.write(`${Date.now()}\n`)
  await windowed(count, IN_FLIGHT, async (i) => {
    const r = reading(i)
    await client.publishAsync(`sensors/${r.room}/temperature`, JSON.stringify({ seq: r.seq, celsius: r.celsius }), { qos: 1 })
  })
  await client.endAsync()
  process.exit(0)
}

async function http (dir: string, processes: ChildProcess[]): Promise<void> {
  let received = 0
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => {
      received += body.startsWith('[') ? (JSON.parse(body) as unknown[]).length : 1
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const hport = (server.address() as { port: number }).port
  const rows = new Map<string, number[]>()
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const [name, batch] of [['one request per message', ''], ['max_in_flight: 8', '    max_in_flight: 8\n'], ['batch: { max_rows: 100 } (a JSON array)', '    batch: { max_rows: 100, max_wait_ms: 20 }\n']] as const) {
        const rules = join(dir, 'http-rules.yaml')
        // A queue that holds the whole flood: the rate measured is the sink's, not what a full queue drops.
        writeFileSync(rules, `version: 1\nsinks:\n  hook:\n    type: http\n    url: "http://127.0.0.1:${hport}/ingest/{room}"\n    queue_size: ${HTTP_MESSAGES}\n${batch}rules:\n  - name: forward\n    from: sensors/+room/temperature\n    to: [{ sink: hook }]\n`)
        const port = await freePort()
        const sb = spawn(process.execPath, [join(projectRoot, 'bin', 'signalbox.js'), 'run', '--no-watch', '--log-level', 'warn', '--sys-interval', '0', '--data-dir', join(dir, `http-${run}-${batch.length}`), '--port', String(port), rules], { stdio: 'ignore' })
        processes.push(sb)
        await waitForPort(port)
        received = 0
        const rate = await flood(port, HTTP_MESSAGES, async () => received >= HTTP_MESSAGES)
        rows.set(name, [...(rows.get(name) ?? []), rate])
        sb.kill('SIGTERM')
        await new Promise((resolve) => sb.once('exit', resolve))
      }
    }
  } finally {
    server.close()
  }
  const single = median(rows.get('one request per message')!)
  console.log(`HTTP: ${fmt(HTTP_MESSAGES)} QoS 1 messages through \`signalbox run\` to a node:http server on loopback, until the server has them all:`)
  console.log()
  console.log('| http sink | messages/s | ÷ one per message |')
  console.log('| --- | ---: | ---: |')
  for (const [name, rates] of rows) console.log(`| ${name} | ${fmt(median(rates))} | ${(median(rates) / single).toFixed(2)}× |`)
  console.log()
}
