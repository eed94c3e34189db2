// End to end: `signalbox run` with 1,000 rules (filter passing ~50 %, transform, republish) against
// raw aedes (no rules; patched as signalbox runs it, and as published), and, when installed, Mosquitto, each in its own process; the publisher and
// the subscriber are processes of their own too. Per server, interleaved runs:
//  - floods (after one unmeasured warm-up flood): N QoS 0 messages of ~100 bytes as fast as the
//    publisher can write, then one QoS 1 marker whose PUBACK means the server has taken everything
//    before it: the accepted input rate, and the server process' CPU (/proc/<pid>/stat) per input
//    message. Three floods: ingestion alone; with a subscriber on the input topics (every server
//    delivers the same messages: what rules add, like for like); with a subscriber on '#' (signalbox
//    delivers its outputs too, half again as many messages);
//  - paced: 10,000 msg/s for a few seconds; the subscriber reports the latency of what it receives
//    (for raw aedes and Mosquitto the input itself, for signalbox the rule's output) as p50 and p99.
// Run it alone with `npm run bench -- broker` (add --quick for a short run).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpuTicks, freePort, mosquittoBinary, waitForPort } from './processes.js'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import mqtt from 'mqtt'
import { fmt, machine, median, quick } from './stats.js'
import { random, routerWorkload } from './workload.js'
import { nodeRedBinary, nodeRedRate } from './nodered.js'
import { rulesYaml } from './rules-file.js'
import { projectRoot, scriptArgs } from './root.js'
import { unpatchedAedes } from './unpatched.js'
import { describeVariant, signalboxWithout } from './variants.js'

const FLOOD = quick ? 30_000 : 100_000
// A quick run (under a minute for all benches) takes one round; a full run the median of five
// (single runs on these machines differ by a third).
const RUNS = quick ? 1 : 5
const PACE = 10_000
const PACED_SECONDS = quick ? 1 : 4
const self = fileURLToPath(import.meta.url)
const role = process.argv[process.argv.indexOf('--role') + 1]
/** With --fast-paths: signalbox against itself without each fast path, instead of against the other brokers. */
const fastPaths = process.argv.includes('--fast-paths')

if (process.argv.includes('--role')) {
  await runRole(role, process.argv.slice(process.argv.indexOf('--role') + 2))
} else {
  await main()
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-bench-'))
  try {
    const { filters, topics } = routerWorkload(1000, 5000)
    // Only topics some rule matches, so every input goes through the engine.
    const matching = topics.filter((t) => !t.startsWith('unknown/'))
    writeFileSync(join(dir, 'rules.yaml'), rulesYaml(filters))
    writeFileSync(join(dir, 'topics.json'), JSON.stringify(matching))
    const signalbox = (bin: string) => (port: number): ChildProcess => spawn(process.execPath, [bin, 'run', '--no-watch', '--log-level', 'warn', '--data-dir', join(dir, `data-${port}`), '--port', String(port), join(dir, 'rules.yaml')], { stdio: 'ignore' })
    const servers: Array<{ name: string, start: (port: number) => ChildProcess, outputs: boolean }> = fastPaths
      // What the payload picker and the generated code buy end to end: the same server with each taken out.
      ? [
          { name: 'signalbox, 1,000 rules', start: signalbox(join(projectRoot, 'bin', 'signalbox.js')), outputs: true },
          ...(['picker', 'codegen'] as const).map((path) => ({ name: `signalbox ${describeVariant(path)}`, start: signalbox(signalboxWithout(path)), outputs: true }))
        ]
      : [
          { name: 'raw aedes (no rules)', start: (port) => node(['--role', 'aedes', String(port)]), outputs: false },
          // What the patch (mixed-QoS delivery, QoS downgrade, bounded backlogs) costs the broker itself.
          { name: 'raw aedes 1.2.0 unpatched', start: (port) => node(['--role', 'aedes', String(port), unpatchedAedes()]), outputs: false },
          { name: 'signalbox, 1,000 rules', start: signalbox(join(projectRoot, 'bin', 'signalbox.js')), outputs: true }
        ]
    const mosquitto = fastPaths ? undefined : mosquittoBinary()
    // The input topics' first levels: a subscriber on these gets every input and no output.
    const inputFilters = [...new Set(matching.map((t) => `${t.split('/')[0]}/#`))].join(',')
    const floods = [
      { name: 'ingestion alone', filters: undefined },
      { name: 'a subscriber on the inputs', filters: inputFilters },
      { name: "a subscriber on '#'", filters: '#' }
    ]
    const results = new Map<string, { rate: number[][], cpu: number[][], p50: number[], p99: number[] }>()
    const nodeRed = fastPaths ? undefined : nodeRedBinary()
    const nodeRedRates: number[] = []
    const nodeRedOutputs: number[] = []
    for (let run = 0; run < RUNS; run++) {
      // Each round starts with another server, so no server always follows the same one.
      for (const s of [...servers.slice(run % servers.length), ...servers.slice(0, run % servers.length)]) {
        const port = await freePort()
        const server = s.start(port)
        try {
          await waitForPort(port)
          // A warm-up flood first, for every server alike: a broker runs for months, and what is
          // measured is its steady state, not the JIT compiling it (nor signalbox's caches filling).
          await publisher(port, dir, 'flood', server.pid!)
          const r = results.get(s.name) ?? { rate: floods.map(() => []), cpu: floods.map(() => []), p50: [], p99: [] }
          for (const [i, f] of floods.entries()) {
            const counter = f.filters === undefined ? undefined : node(['--role', 'count', String(port), f.filters])
            if (counter !== undefined) await new Promise((resolve) => setTimeout(resolve, 300))
            const flood = await publisher(port, dir, 'flood', server.pid!)
            counter?.kill('SIGKILL')
            r.rate[i].push(flood.rate)
            r.cpu[i].push(flood.cpuMicros)
          }
          const latency = await paced(port, dir, s.outputs)
          r.p50.push(latency.p50); r.p99.push(latency.p99)
          results.set(s.name, r)
        } finally {
          server.kill('SIGKILL')
        }
      }
      if (nodeRed !== undefined && mosquitto !== undefined) {
        const run = await nodeRedRate(dir, mosquitto, nodeRed, FLOOD, async (port) => { await child(['publish', String(port), dir, 'flood']) })
        nodeRedRates.push(run.rate)
        nodeRedOutputs.push(run.outputs)
      }
    }
    const raw = results.get(servers[0].name)!
    const ratio = (a: number[], b: number[]): string => `${(median(a) / median(b)).toFixed(2)}×`
    console.log(`# Broker end to end (${machine()}; floods of ${fmt(FLOOD)} QoS 0 messages of ${fastPaths ? '~450' : '~100'} bytes after a warm-up flood: ${floods.map((f) => f.name).join('; ')}; paced ${fmt(PACE)} msg/s for ${PACED_SECONDS} s; publisher, subscriber and server in separate processes; ${RUNS === 1 ? 'one round (--quick)' : `medians of ${RUNS} interleaved runs, each round starting with the next server`})`)
    console.log()
    console.log(`Accepted input rate, msg/s (÷ ${servers[0].name}), and latency at ${fmt(PACE)} msg/s:`)
    console.log()
    console.log(`| server | ${floods.map((f) => f.name).join(' | ')} | latency p50 ms | p99 ms |`)
    console.log(`| --- | ${floods.map(() => '---:').join(' | ')} | ---: | ---: |`)
    for (const s of servers) {
      const r = results.get(s.name)!
      console.log(`| ${s.name} | ${floods.map((_, i) => `${fmt(median(r.rate[i]))} (${ratio(r.rate[i], raw.rate[i])})`).join(' | ')} | ${median(r.p50).toFixed(2)} | ${median(r.p99).toFixed(2)} |`)
    }
    console.log()
    console.log(`Server CPU per input message, µs (÷ ${servers[0].name}):`)
    console.log()
    console.log(`| server | ${floods.map((f) => f.name).join(' | ')} |`)
    console.log(`| --- | ${floods.map(() => '---:').join(' | ')} |`)
    for (const s of servers) {
      const r = results.get(s.name)!
      console.log(`| ${s.name} | ${floods.map((_, i) => `${median(r.cpu[i]).toFixed(1)} (${ratio(r.cpu[i], raw.cpu[i])})`).join(' | ')} |`)
    }
    console.log()
    if (nodeRedRates.length > 0) {
      const signalbox = results.get(servers.find((s) => s.name.startsWith('signalbox'))!.name)!
      // A flow that drops messages would finish early and look fast: say whether every output came.
      const expected = passingOf(FLOOD)
      const short = nodeRedOutputs.filter((n) => n < expected)
      const delivered = short.length === 0 ? `every run delivered all ${fmt(expected)} outputs` : `${short.length} of ${nodeRedOutputs.length} runs delivered fewer than the ${fmt(expected)} outputs (${short.map((n) => fmt(n)).join(', ')}): its rate is overstated`
      console.log(`Node-RED (mqtt in → switch → change → mqtt out, on Mosquitto) handled ${fmt(median(nodeRedRates))} inputs/s (${delivered}); signalbox (1,000 rules) accepted ${fmt(median(signalbox.rate[0]))}/s: ${(median(signalbox.rate[0]) / median(nodeRedRates)).toFixed(1)}× Node-RED's input rate`)
    } else if (!fastPaths) {
      console.log(`Node-RED: ${mosquitto === undefined ? 'needs Mosquitto: row skipped' : 'not installed (npm install -g node-red): row skipped'}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function node (args: string[]): ChildProcess {
  // Children read --quick too: a publisher must send the FLOOD this process divides by.
  return spawn(process.execPath, [...scriptArgs(self), ...args, ...(quick ? ['--quick'] : []), ...(fastPaths ? ['--fast-paths'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] })
}

/** Runs a child role and parses the JSON line it prints. */
async function child<T> (args: string[]): Promise<T> {
  const proc = node(['--role', ...args])
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve))
  if (code !== 0) throw new Error(`bench role ${args[0]} failed (${String(code)})`)
  return JSON.parse(out.trim().split('\n').pop()!) as T
}

async function publisher (port: number, dir: string, mode: 'flood', serverPid: number): Promise<{ rate: number, cpuMicros: number }> {
  const before = cpuTicks(serverPid)
  const { seconds } = await child<{ seconds: number }>(['publish', String(port), dir, mode])
  const ticks = cpuTicks(serverPid) - before
  return { rate: FLOOD / seconds, cpuMicros: (ticks * 10_000) / FLOOD }
}

async function paced (port: number, dir: string, outputs: boolean): Promise<{ p50: number, p99: number }> {
  const sub = child<{ p50: number, p99: number }>(['subscribe', String(port), outputs ? 'out/#' : '#'])
  await new Promise((resolve) => setTimeout(resolve, 300))
  await child(['publish', String(port), dir, 'paced'])
  return await sub
}

/**
 * The publisher's messages, in order (a seeded value 0–99; the rules pass value ≥ 50). With
 * --fast-paths, a telemetry report of about 450 bytes instead: the three fields the rules read
 * among 30 readings they do not, where reading only what the rules need can pay.
 */
function floodMessages (): (i: number) => string {
  const rnd = random(11)
  const readings = fastPaths ? Object.fromEntries(Array.from({ length: 30 }, (_, k) => [`r${k}`, Math.round(rnd() * 1e6) / 1e3])) : undefined
  return (i) => JSON.stringify({ seq: i, value: Math.floor(rnd() * 100), t: performance.timeOrigin + performance.now(), ...(readings === undefined ? { pad: 'x'.repeat(40) } : readings) })
}

/** How many of a flood's messages pass the rules' filter: the outputs a flow must deliver. */
function passingOf (flood: number): number {
  const message = floodMessages()
  let passing = 0
  for (let i = 0; i < flood; i++) if ((JSON.parse(message(i)) as { value: number }).value >= 50) passing++
  return passing
}

async function runRole (name: string, args: string[]): Promise<void> {
  if (name === 'aedes') {
    // args[1]: another copy of aedes to run (the unpatched one), by its entry file.
    const copy = args[1] !== undefined && !args[1].startsWith('--') ? args[1] : undefined
    const { Aedes } = (copy === undefined ? await import('aedes') : await import(pathToFileURL(copy).href)) as typeof import('aedes')
    const aedes = await Aedes.createBroker()
    // TCP_NODELAY, as signalbox's listeners have it: the comparison is about rules, not Nagle.
    createServer({ noDelay: true }, aedes.handle).listen(Number(args[0]), '127.0.0.1')
    return
  }
  const port = Number(args[0])
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
  // Clients that want latency turn Nagle off; mqtt.js does not.
  ;(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
  if (name === 'publish') {
    const topics = JSON.parse(readFileSync(join(args[1], 'topics.json'), 'utf8')) as string[]
    const message = floodMessages()
    if (args[2] === 'flood') {
      const start = performance.now()
      for (let i = 0; i < FLOOD; i++) {
        client.publish(topics[i % topics.length], message(i))
        if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve))
      }
      await client.publishAsync('bench/marker', 'done', { qos: 1 })
      process.stdout.write(JSON.stringify({ seconds: (performance.now() - start) / 1000 }) + '\n')
    } else {
      const total = PACE * PACED_SECONDS
      const start = performance.now()
      for (let i = 0; i < total; i += 10) {
        // Batches of 10 each millisecond: 10,000 msg/s.
        const due = start + i / (PACE / 1000)
        while (performance.now() < due) await new Promise((resolve) => setImmediate(resolve))
        for (let k = i; k < i + 10; k++) client.publish(topics[k % topics.length], message(k))
      }
      await client.publishAsync('bench/end', 'done', { qos: 1 })
      process.stdout.write('{}\n')
    }
  } else if (name === 'count') {
    // Receives what its filters match and keeps nothing: the server's delivery work is in its CPU figure.
    await client.subscribeAsync(args[1].split(','), { qos: 0 })
    // Runs until the bench kills it.
    await new Promise(() => {})
  } else if (name === 'subscribe') {
    const latencies: number[] = []
    let last = performance.now()
    client.on('message', (_topic, payload) => {
      last = performance.now()
      try {
        const t = (JSON.parse(payload.toString()) as { t?: number }).t
        if (typeof t === 'number') latencies.push(performance.timeOrigin + performance.now() - t)
      } catch {}
    })
    await client.subscribeAsync(args[1], { qos: 0 })
    // Done when nothing has arrived for a second (after something did).
    while (latencies.length === 0 || performance.now() - last < 1000) await new Promise((resolve) => setTimeout(resolve, 100))
    latencies.sort((a, b) => a - b)
    const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]
    process.stdout.write(JSON.stringify({ p50: at(0.5), p99: at(0.99), n: latencies.length }) + '\n')
  }
  await client.endAsync()
  process.exit(0)
}
