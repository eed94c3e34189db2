// Scale-out: 1 against 2 `signalbox run` workers on one Mosquitto (shared subscriptions, QoS 1),
// with the 1,000 rules of the broker benchmark. A publisher process sends N QoS 1 messages as fast
// as Mosquitto takes them; the clock stops when the workers' /metrics say they have received all N.
// Reported: messages handled per second, its ratio to 1 worker, and CPU per message of the workers
// (summed) and of Mosquitto. Publisher, broker and workers share this machine's cores, so 2 workers
// on 2 cores cannot double; the row says what they do. Run alone with `npm run bench -- scaleout`.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { cpuTicks, freePort, mosquittoBinary, waitForPort } from './processes.js'
import { rulesYaml } from './rules-file.js'
import { projectRoot, scriptArgs } from './root.js'
import { fmt, machine, median, quick } from './stats.js'
import { random, routerWorkload } from './workload.js'

const MESSAGES = quick ? 20_000 : 60_000
const RUNS = quick ? 1 : 3
const WORKER_COUNTS = [1, 2]
const self = fileURLToPath(import.meta.url)

if (process.argv[2] === '--role-publish') {
  await publish(Number(process.argv[3]), process.argv[4])
} else {
  await main()
}

async function main (): Promise<void> {
  const mosquitto = mosquittoBinary()
  if (mosquitto === undefined) {
    console.log('# Scale-out: skipped, mosquitto is not installed (apt-get install -y mosquitto)')
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-scaleout-'))
  const started: ChildProcess[] = []
  try {
    const { filters, topics } = routerWorkload(1000, 5000)
    writeFileSync(join(dir, 'rules.yaml'), rulesYaml(filters))
    writeFileSync(join(dir, 'topics.json'), JSON.stringify(topics.filter((t) => !t.startsWith('unknown/'))))
    const results = new Map<number, { rate: number[], workerCpu: number[], brokerCpu: number[] }>()
    for (let run = 0; run < RUNS; run++) {
      for (const count of WORKER_COUNTS) {
        const port = await freePort()
        writeFileSync(join(dir, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 1000\n`)
        const broker = spawn(mosquitto, ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' })
        started.push(broker)
        await waitForPort(port)
        const workers = []
        for (let i = 0; i < count; i++) workers.push(await startWorker(port, join(dir, 'rules.yaml'), started))
        const before = { workers: workers.map((w) => cpuTicks(w.proc.pid!)), broker: cpuTicks(broker.pid!) }
        const clock = performance.now()
        // The publisher reads --quick too, so it sends the MESSAGES this process waits for.
        const publisher = spawn(process.execPath, [...scriptArgs(self), '--role-publish', String(port), dir, ...(quick ? ['--quick'] : [])], { stdio: 'inherit' })
        started.push(publisher)
        await waitForReceived(workers.map((w) => w.http), MESSAGES)
        const seconds = (performance.now() - clock) / 1000
        const workerTicks = workers.reduce((sum, w, i) => sum + cpuTicks(w.proc.pid!) - before.workers[i], 0)
        const brokerTicks = cpuTicks(broker.pid!) - before.broker
        const r = results.get(count) ?? { rate: [], workerCpu: [], brokerCpu: [] }
        r.rate.push(MESSAGES / seconds)
        r.workerCpu.push(workerTicks * 10_000 / MESSAGES)
        r.brokerCpu.push(brokerTicks * 10_000 / MESSAGES)
        results.set(count, r)
        for (const p of [publisher, ...workers.map((w) => w.proc), broker]) p.kill('SIGKILL')
      }
    }
    const one = median(results.get(1)!.rate)
    console.log(`# Scale-out (${machine()}; Mosquitto with shared subscriptions, QoS 1, max_inflight_messages 1000; ${fmt(MESSAGES)} messages of ~100 bytes through 1,000 rules; publisher, broker and workers on the same cores; medians of ${RUNS} interleaved runs)`)
    console.log('| workers | handled msg/s | ÷ 1 worker | workers CPU µs/msg | Mosquitto CPU µs/msg |')
    console.log('| ---: | ---: | ---: | ---: | ---: |')
    for (const count of WORKER_COUNTS) {
      const r = results.get(count)!
      console.log(`| ${count} | ${fmt(median(r.rate))} | ${(median(r.rate) / one).toFixed(2)}× | ${median(r.workerCpu).toFixed(1)} | ${median(r.brokerCpu).toFixed(1)} |`)
    }
  } finally {
    for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A worker with its metrics endpoint; resolves once it has subscribed to every filter. */
async function startWorker (port: number, rules: string, started: ChildProcess[]): Promise<{ proc: ChildProcess, http: string }> {
  const proc = spawn(process.execPath, [join(projectRoot, 'bin', 'signalbox.js'), 'run', '--no-watch', '--source', `mqtt://127.0.0.1:${port}`, '--share', 'bench', '--http', '127.0.0.1:0', rules], { stdio: ['ignore', 'ignore', 'pipe'] })
  started.push(proc)
  let log = ''
  proc.stderr!.on('data', (d: Buffer) => { log += d.toString() })
  const deadline = Date.now() + 20_000
  while (!/source subscriptions changed/.test(log) || !/"url":"http/.test(log)) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error('worker did not start: ' + log)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { proc, http: /"url":"(http:[^"]+)"/.exec(log)![1] }
}

/** Polls the workers' /metrics until their received counts add up to `total`. */
async function waitForReceived (endpoints: string[], total: number): Promise<void> {
  const deadline = Date.now() + 300_000
  for (;;) {
    let sum = 0
    for (const url of endpoints) {
      const text = await (await fetch(`${url}/metrics`)).text()
      sum += Number(/^signalbox_source_received_total\{[^}]*\} (\d+)$/m.exec(text)?.[1] ?? 0)
    }
    if (sum >= total) return
    if (Date.now() > deadline) throw new Error(`workers received ${sum} of ${total}`)
    // A scrape of 1,000 rules' counters costs the worker a few ms: not too often.
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

async function publish (port: number, dir: string): Promise<void> {
  const topics = JSON.parse(readFileSync(join(dir, 'topics.json'), 'utf8')) as string[]
  const rnd = random(11)
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
  const pending: Array<Promise<unknown>> = []
  for (let i = 0; i < MESSAGES; i++) {
    pending.push(client.publishAsync(topics[i % topics.length], JSON.stringify({ seq: i, value: Math.floor(rnd() * 100), pad: 'x'.repeat(60) }), { qos: 1 }))
    if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve))
  }
  await Promise.all(pending)
  await client.endAsync()
}
