// Durability (issue 15), side by side in one run:
//  - the log alone: 100,000 appends of ~150-byte messages with 100 in flight, signalbox's write-ahead
//    log (process, power) against lmdb's batched writes (its async puts are committed in batches;
//    noSync for process, synced for power), when lmdb is installed (npm install --no-save lmdb);
//  - end to end: QoS 1 floods (a publisher process with 100 in flight) through `signalbox run` with
//    1,000 rules (a republish and a file sink each) and --durability none, process and power:
//    acknowledged msg/s and the server's CPU per message, interleaved rounds;
//  - recovery: `signalbox run` started on a log holding 100,000 unsettled messages: the time the
//    replay took (from its log line) and until the broker listened.
// Run it alone with `npm run bench -- durability` (add --quick for a short run).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { pino } from 'pino'
import { cpuTicks, freePort, waitForPort, windowed } from './processes.js'
import { fmt, machine, median, quick } from './stats.js'
import { routerWorkload } from './workload.js'
import { projectRoot, scriptArgs } from './root.js'
import { shipped } from './shipped.js'

const { WriteAheadLog } = await shipped<typeof import('../engine/durability/wal.js')>('engine/durability/wal.js')

const APPENDS = quick ? 20_000 : 100_000
const FLOOD = quick ? 10_000 : 40_000
const RUNS = quick ? 1 : 3
const REPLAY = quick ? 20_000 : 100_000
const IN_FLIGHT = 100
const MODES = ['none', 'process', 'power'] as const
const self = fileURLToPath(import.meta.url)

if (process.argv.includes('--role')) {
  await publisher(Number(process.argv[process.argv.indexOf('--role') + 2]))
} else {
  await main()
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-bench-'))
  try {
    console.log(`# Durability (${machine()}; ${RUNS === 1 ? 'one round (--quick)' : `medians of ${RUNS} interleaved rounds`})`)
    console.log()
    await logAlone(dir)
    await endToEnd(dir)
    await recovery(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function payload (i: number): Buffer {
  return Buffer.from(JSON.stringify({ seq: i, value: i % 100, t: 1_700_000_000_000 + i, pad: 'x'.repeat(60) }))
}

async function logAlone (dir: string): Promise<void> {
  // What the bench uses of lmdb (not a dependency: install it to get its rows).
  interface Lmdb { open: (o: { path: string, noSync: boolean, compression: boolean }) => { put: (k: number, v: Buffer) => Promise<boolean>, close: () => Promise<void> } }
  let lmdb: Lmdb | undefined
  try {
    lmdb = await import('lmdb' as string) as Lmdb
  } catch {
    lmdb = undefined
  }
  const silent = pino({ level: 'silent' })
  const rows = new Map<string, number[]>()
  for (let run = 0; run < RUNS; run++) {
    for (const sync of ['process', 'power'] as const) {
      const walDir = join(dir, `wal-${sync}-${run}`)
      const { wal } = await WriteAheadLog.open({ dir: walDir, sync, maxBytes: 1024 * 1024 * 1024, logger: silent })
      const seconds = await windowed(APPENDS, IN_FLIGHT, async (i) => await wal.append({ topic: `s/${i % 100}/t`, payload: payload(i), qos: 1, retain: false, clientId: 'bench', receivedAt: Date.now() }))
      await wal.close()
      rmSync(walDir, { recursive: true, force: true })
      push(rows, `signalbox write-ahead log, ${sync}`, APPENDS / seconds)
      if (lmdb === undefined) continue
      const path = join(dir, `lmdb-${sync}-${run}`)
      const db = lmdb.open({ path, noSync: sync === 'process', compression: false })
      const lmdbSeconds = await windowed(APPENDS, IN_FLIGHT, async (i) => await db.put(i, payload(i)))
      await db.close()
      rmSync(path, { recursive: true, force: true })
      push(rows, `lmdb async put (batched), ${sync === 'process' ? 'noSync' : 'synced'}`, APPENDS / lmdbSeconds)
    }
  }
  console.log(`The log alone: ${fmt(APPENDS)} appends of ~150-byte messages, ${IN_FLIGHT} in flight; appends/s:`)
  console.log()
  console.log('| log | appends/s |')
  console.log('| --- | ---: |')
  for (const [name, rates] of rows) console.log(`| ${name} | ${fmt(median(rates))} |`)
  if (lmdb === undefined) console.log('| lmdb | not installed (npm install --no-save lmdb): row skipped |')
  console.log()
}

function push (rows: Map<string, number[]>, name: string, value: number): void {
  rows.set(name, [...(rows.get(name) ?? []), value])
}

function rulesFile (dir: string): string {
  const file = join(dir, 'rules.yaml')
  const { filters } = routerWorkload(1000, 1)
  const lines = ['version: 1', 'rules:']
  filters.forEach((filter, i) => lines.push(
    `  - name: rule-${i}`,
    `    from: "${filter}"`,
    '    set:',
    '      seq: { var: payload.seq }',
    '      value: { var: payload.value }',
    `    to: [{ mqtt: "out/${i}" }, { file: "${join(dir, 'out.jsonl')}" }]`
  ))
  writeFileSync(file, lines.join('\n') + '\n')
  return file
}

/** Topics the workload's filters match, one per filter: every input goes through a rule. */
function matchingTopics (): string[] {
  const { topics } = routerWorkload(1000, 5000)
  return topics.filter((t) => !t.startsWith('unknown/'))
}

async function endToEnd (dir: string): Promise<void> {
  const rules = rulesFile(dir)
  writeFileSync(join(dir, 'topics.json'), JSON.stringify(matchingTopics()))
  const rates = new Map<string, number[]>()
  const cpu = new Map<string, number[]>()
  const perWrite = new Map<string, number[]>()
  for (let run = 0; run < RUNS; run++) {
    for (const mode of [...MODES.slice(run % 3), ...MODES.slice(0, run % 3)]) {
      const port = await freePort()
      const http = await freePort()
      const dataDir = join(dir, `data-${mode}-${run}`)
      const server = spawn(process.execPath, [join(projectRoot, 'bin', 'signalbox.js'), 'run', '--no-watch', '--log-level', 'warn', '--sys-interval', '0', '--durability', mode, '--data-dir', dataDir, '--port', String(port), '--http', `127.0.0.1:${http}`, rules], { stdio: 'ignore' })
      try {
        await waitForPort(port)
        await flood(port, dir)
        const before = cpuTicks(server.pid!)
        const seconds = await flood(port, dir)
        push(cpu, mode, ((cpuTicks(server.pid!) - before) * 10_000) / FLOOD)
        push(rates, mode, FLOOD / seconds)
        if (mode !== 'none') {
          // How many publishes each write of the log carried (both floods).
          const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text()
          const value = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1] ?? NaN)
          push(perWrite, mode, value('signalbox_wal_appended_total') / value('signalbox_wal_writes_total'))
        }
      } finally {
        server.kill('SIGKILL')
        await new Promise((resolve) => server.once('exit', resolve))
        rmSync(dataDir, { recursive: true, force: true })
      }
    }
  }
  const none = median(rates.get('none')!)
  console.log(`End to end: QoS 1 floods of ${fmt(FLOOD)} messages (${IN_FLIGHT} in flight, after a warm-up flood) through 1,000 rules, each with a republish and a file sink:`)
  console.log()
  console.log('| durability | acknowledged msg/s (÷ none) | server CPU µs/msg (÷ none) | publishes per write of the log |')
  console.log('| --- | ---: | ---: | ---: |')
  for (const mode of MODES) {
    const r = median(rates.get(mode)!)
    const c = median(cpu.get(mode)!)
    const w = perWrite.get(mode)
    console.log(`| ${mode} | ${fmt(r)} (${(r / none).toFixed(2)}×) | ${c.toFixed(1)} (${(c / median(cpu.get('none')!)).toFixed(2)}×) | ${w === undefined ? '' : median(w).toFixed(1)} |`)
  }
  console.log()
}

/** A QoS 1 flood from a publisher process; resolves with its seconds from first publish to last ack. */
async function flood (port: number, dir: string): Promise<number> {
  const child: ChildProcess = spawn(process.execPath, [...scriptArgs(self), '--role', dir, String(port), ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  if (code !== 0) throw new Error(`publisher failed (${String(code)})`)
  return (JSON.parse(out.trim()) as { seconds: number }).seconds
}

async function publisher (port: number): Promise<void> {
  const dir = process.argv[process.argv.indexOf('--role') + 1]
  const topics = JSON.parse(readFileSync(join(dir, 'topics.json'), 'utf8')) as string[]
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
  ;(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
  const seconds = await windowed(FLOOD, IN_FLIGHT, async (i) => await client.publishAsync(topics[i % topics.length], payload(i), { qos: 1 }))
  process.stdout.write(JSON.stringify({ seconds }) + '\n')
  await client.endAsync()
  process.exit(0)
}

async function recovery (dir: string): Promise<void> {
  const rules = rulesFile(dir)
  const topics = matchingTopics()
  const dataDir = join(dir, 'data-recovery')
  // The log as a crash leaves it: REPLAY messages appended, none settled.
  const { wal } = await WriteAheadLog.open({ dir: join(dataDir, 'wal'), sync: 'process', maxBytes: 1024 * 1024 * 1024, logger: pino({ level: 'silent' }) })
  await windowed(REPLAY, IN_FLIGHT, async (i) => await wal.append({ topic: topics[i % topics.length], payload: payload(i), qos: 1, retain: false, clientId: 'bench', receivedAt: Date.now() }))
  await wal.close()
  const port = await freePort()
  const started = performance.now()
  const server = spawn(process.execPath, [join(projectRoot, 'bin', 'signalbox.js'), 'run', '--no-watch', '--log-level', 'info', '--sys-interval', '0', '--data-dir', dataDir, '--port', String(port), rules], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  server.stderr!.on('data', (d: Buffer) => { log += d.toString() })
  try {
    // The broker listens before the replay (new publishes wait for their ack until it is done): wait for its log line.
    const done = (): string | undefined => log.split('\n').find((l) => l.includes('unsettled messages handled again'))
    while (done() === undefined) {
      if (server.exitCode !== null) throw new Error(`signalbox exited during the replay: ${log}`)
      if (performance.now() - started > 300_000) throw new Error('the replay did not finish in 300 s')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const wall = performance.now() - started
    const replayMs = (JSON.parse(done()!) as { ms: number }).ms
    console.log(`Recovery: \`signalbox run\` on a log of ${fmt(REPLAY)} unsettled messages (1,000 rules, a republish and a file sink each):`)
    console.log()
    console.log('| replayed | replay, ms | process start to replay done, ms | replayed msg/s |')
    console.log('| ---: | ---: | ---: | ---: |')
    console.log(`| ${fmt(REPLAY)} | ${fmt(replayMs)} | ${fmt(wall)} | ${fmt(REPLAY / (replayMs / 1000))} |`)
    console.log()
  } finally {
    server.kill('SIGKILL')
  }
}
