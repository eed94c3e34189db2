// Slow consumers: a paced 2,000 msg/s stream to one normal subscriber while 0, 1 and 10 other
// subscribers on '#' stop reading (raw sockets that subscribe, then never read). The normal
// subscriber's latency (p50, p99) and the longest gap between two of its messages, for signalbox
// (the embedded broker, one rule), aedes 1.2.0 as published, and Mosquitto, side by side in one
// round; every server, publisher and subscriber in a process of its own.
// Run it alone with `npm run bench -- slow-consumers` (add --quick for a short run).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect as tcpConnect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import mqtt from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { freePort, mosquittoBinary, waitForPort } from './processes.js'
import { projectRoot, scriptArgs } from './root.js'
import { fmt, machine, median, quick } from './stats.js'
import { unpatchedAedes } from './unpatched.js'

const RATE = 2000
const SECONDS = quick ? 3 : 6
const RUNS = quick ? 1 : 3
const FROZEN = [0, 1, 10]
// 4 KiB messages, 8 MB/s: a frozen subscriber's socket buffers (a few MB on loopback) fill within the first second.
const PAD = 'x'.repeat(4000)
const self = fileURLToPath(import.meta.url)

if (process.argv.includes('--role')) {
  const at = process.argv.indexOf('--role')
  await runRole(process.argv[at + 1], process.argv.slice(at + 2))
} else {
  await main()
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-bench-slow-'))
  try {
    writeFileSync(join(dir, 'rules.yaml'), 'version: 1\nrules:\n  - name: relay\n    from: in/+n\n    to: [{ mqtt: "out/{n}", qos: 0 }]\n')
    // The subscriber takes the rule's outputs on signalbox, the inputs on the plain brokers: the same count, the same pace.
    const servers: Array<{ name: string, filter: string, start: (port: number) => ChildProcess }> = [
      { name: 'signalbox (embedded broker, 1 rule)', filter: 'out/#', start: (port) => spawn(process.execPath, [join(projectRoot, 'bin', 'signalbox.js'), 'run', '--no-watch', '--log-level', 'error', '--sys-interval', '0', '--data-dir', join(dir, 'data'), '--port', String(port), join(dir, 'rules.yaml')], { stdio: 'ignore' }) },
      { name: 'aedes 1.2.0 as published', filter: 'in/#', start: (port) => node(['--role', 'aedes', String(port), unpatchedAedes()]) }
    ]
    const mosquitto = mosquittoBinary()
    if (mosquitto !== undefined) {
      const conf = join(dir, 'mosquitto.conf')
      servers.push({ name: 'Mosquitto', filter: 'in/#', start: (port) => { writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n`); return spawn(mosquitto, ['-c', conf], { stdio: 'ignore' }) } })
    }
    const results = new Map<string, Array<{ p50: number[], p99: number[], gap: number[], lost: number[] }>>()
    for (let run = 0; run < RUNS; run++) {
      for (const s of servers) {
        const rows = results.get(s.name) ?? FROZEN.map(() => ({ p50: [], p99: [], gap: [], lost: [] }))
        for (const [i, frozen] of FROZEN.entries()) {
          const port = await freePort()
          const server = s.start(port)
          try {
            await waitForPort(port)
            const freezer = frozen > 0 ? node(['--role', 'freeze', String(port), String(frozen)]) : undefined
            if (freezer !== undefined) await lineReader(freezer)()
            const r = await measure(port, s.filter)
            freezer?.kill('SIGKILL')
            rows[i].p50.push(r.p50); rows[i].p99.push(r.p99); rows[i].gap.push(r.gap); rows[i].lost.push(r.lost)
          } finally {
            server.kill('SIGKILL')
          }
        }
        results.set(s.name, rows)
      }
    }
    console.log(`# Slow consumers (${machine()}; ${fmt(RATE)} msg/s of ~4 KiB for ${SECONDS} s to one subscriber, with 0, 1 and 10 subscribers on '#' that never read; ${RUNS === 1 ? 'one round (--quick)' : `medians of ${RUNS} interleaved rounds`})`)
    console.log()
    console.log('The normal subscriber: latency p50 / p99 ms, longest gap between two messages ms, messages it did not get (÷ its p99 with none frozen):')
    console.log()
    console.log(`| server | ${FROZEN.map((n) => `${n} frozen: p50 / p99 / gap / missing`).join(' | ')} |`)
    console.log(`| --- | ${FROZEN.map(() => '---:').join(' | ')} |`)
    for (const s of servers) {
      const rows = results.get(s.name)!
      const base = median(rows[0].p99)
      console.log(`| ${s.name} | ${rows.map((r) => `${median(r.p50).toFixed(2)} / ${median(r.p99).toFixed(2)} (${(median(r.p99) / base).toFixed(2)}×) / ${median(r.gap).toFixed(1)} / ${fmt(median(r.lost))}`).join(' | ')} |`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function node (args: string[]): ChildProcess {
  return spawn(process.execPath, [...scriptArgs(self), ...args, ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] })
}

/** Reads a child's stdout line by line: each call, its next line (an error if it exits first). */
function lineReader (proc: ChildProcess): () => Promise<string> {
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]()
  return async () => {
    const next = await lines.next()
    if (next.done === true) throw new Error(`bench role exited ${String(proc.exitCode)}`)
    return next.value
  }
}

/** The subscriber and the paced publisher, each a process; the subscriber's figures. */
async function measure (port: number, filter: string): Promise<{ p50: number, p99: number, gap: number, lost: number }> {
  const sub = node(['--role', 'subscribe', String(port), filter])
  // Its first line says it has subscribed, its second holds the figures.
  const next = lineReader(sub)
  await next()
  const result = next()
  const pub = node(['--role', 'publish', String(port)])
  await new Promise((resolve) => pub.on('exit', resolve))
  return JSON.parse(await result) as { p50: number, p99: number, gap: number, lost: number }
}

async function runRole (name: string, args: string[]): Promise<void> {
  const port = Number(args[0])
  if (name === 'aedes') {
    const { Aedes } = (await import(pathToFileURL(args[1]).href)) as typeof import('aedes')
    const aedes = await Aedes.createBroker()
    createServer({ noDelay: true }, aedes.handle).listen(port, '127.0.0.1')
    return
  }
  if (name === 'freeze') {
    // Subscribers on '#' that stop reading once subscribed; kept until the bench kills this process.
    const n = Number(args[1])
    await Promise.all(Array.from({ length: n }, async (_, i) => {
      const socket = tcpConnect(port, '127.0.0.1')
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
      socket.on('error', () => {})
      socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `frozen-${i}`, keepalive: 0 }))
      socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] }))
      // Read the CONNACK and SUBACK, then never again.
      await new Promise((resolve) => setTimeout(resolve, 200))
      socket.pause()
    }))
    process.stdout.write('frozen\n')
    // A paused socket does not keep the process alive: a timer does, until the bench kills it.
    setInterval(() => {}, 60_000)
    await new Promise(() => {})
  }
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
  ;(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
  const total = RATE * SECONDS
  if (name === 'publish') {
    const start = performance.now()
    for (let i = 0; i < total; i += 2) {
      // Two each millisecond: 2,000 msg/s.
      const due = start + i / (RATE / 1000)
      while (performance.now() < due) await new Promise((resolve) => setImmediate(resolve))
      for (let k = i; k < i + 2; k++) client.publish(`in/${k}`, JSON.stringify({ seq: k, t: performance.timeOrigin + performance.now(), pad: PAD }))
    }
    await client.endAsync()
    process.exit(0)
  }
  const latencies: number[] = []
  const seen = new Set<number>()
  let last = 0
  let gap = 0
  client.on('message', (_topic, payload) => {
    const now = performance.now()
    if (last > 0) gap = Math.max(gap, now - last)
    last = now
    const m = JSON.parse(payload.toString()) as { seq: number, t: number }
    seen.add(m.seq)
    latencies.push(performance.timeOrigin + now - m.t)
  })
  await client.subscribeAsync(args[1], { qos: 0 })
  process.stdout.write('ready\n')
  // Done when everything came, or nothing has for 3 s (after something did).
  const began = performance.now()
  while (seen.size < total && (last === 0 ? performance.now() - began < 30_000 : performance.now() - last < 3000)) await new Promise((resolve) => setTimeout(resolve, 50))
  latencies.sort((a, b) => a - b)
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN
  process.stdout.write(JSON.stringify({ p50: at(0.5), p99: at(0.99), gap, lost: total - seen.size }) + '\n')
  await client.endAsync()
  process.exit(0)
}
