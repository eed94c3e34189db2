// Reload stall: a paced 2,000 msg/s stream goes through one rule of `signalbox run` (rules
// directory, watched) to a subscriber, while the rules are replaced: by a 10,000-rule file, by a
// 50,000-rule directory (five files), by the same 10,000-rule file with one rule edited, and by a
// 10 MB file that is refused. For each: the longest gap between two delivered messages around the
// reload, how long the reload took (its log line), and whether the process lived. Server,
// publisher and subscriber are processes of their own.
// Run it alone with `npm run bench -- reload-stall` (add --quick for the 10,000-rule cases only).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { firstLine, freePort, lastLine, waitForPort } from './processes.js'
import { projectRoot, scriptArgs } from './root.js'
import { rulesYaml } from './rules-file.js'
import { fmt, machine, quick } from './stats.js'
import { routerWorkload } from './workload.js'

const RATE = 2000
const self = fileURLToPath(import.meta.url)
const STREAM_RULE = 'version: 1\nrules:\n  - name: stream\n    from: stream/+n\n    to: [{ mqtt: "streamed/{n}", qos: 0 }]\n'

if (process.argv.includes('--role')) {
  const at = process.argv.indexOf('--role')
  await runRole(process.argv[at + 1], Number(process.argv[at + 2]))
} else {
  await main()
}

interface Case { name: string, apply: (dir: string) => void, setup?: (dir: string) => void, rejected?: boolean, idle?: boolean }

async function main (): Promise<void> {
  const ten = rulesYaml(routerWorkload(10_000, 100).filters)
  const cases: Case[] = [
    // The stream's own longest gap (GC, the scheduler, two clients on two cores): what a reload adds to.
    { name: 'no change (the stream alone)', apply: () => {}, idle: true },
    { name: 'a 10,000-rule file swapped in', apply: (dir) => writeFileSync(join(dir, 'big.yaml'), ten) },
    { name: 'one rule edited in a 10,000-rule file', setup: (dir) => writeFileSync(join(dir, 'big.yaml'), ten), apply: (dir) => writeFileSync(join(dir, 'big.yaml'), ten.replace('"out/0"', '"out/zero"')) },
    { name: 'a refused 10 MB file', apply: (dir) => writeFileSync(join(dir, 'broken.yaml'), refusedFile()), rejected: true }
  ]
  if (!quick) {
    const fifty = routerWorkload(50_000, 100).filters
    cases.splice(1, 0, {
      name: 'a 50,000-rule directory (5 files) swapped in',
      apply: (dir) => { for (let f = 0; f < 5; f++) writeFileSync(join(dir, `part-${f}.yaml`), rulesYaml(fifty.slice(f * 10_000, (f + 1) * 10_000)).replaceAll('name: rule-', `name: p${f}-rule-`)) }
    })
  }
  const rows: string[] = []
  for (const c of cases) {
    const base = mkdtempSync(join(tmpdir(), 'signalbox-bench-stall-'))
    const dir = join(base, 'rules')
    mkdirSync(dir)
    writeFileSync(join(dir, 'stream.yaml'), STREAM_RULE)
    c.setup?.(dir)
    const port = await freePort()
    let log = ''
    const server = spawn(process.execPath, [join(projectRoot, 'bin', 'signalbox.js'), 'run', '--log-level', 'info', '--sys-interval', '0', '--data-dir', `${dir}-data`, '--port', String(port), dir], { stdio: ['ignore', 'ignore', 'pipe'] })
    server.stderr!.on('data', (d: Buffer) => { log += d.toString() })
    try {
      await waitForPort(port)
      const sub = node(['--role', 'subscribe', String(port)])
      await firstLine(sub)
      const pub = node(['--role', 'publish', String(port)])
      // A second of steady stream, then the change; the stream runs on for the reload.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const mark = log.length
      c.apply(dir)
      const deadline = Date.now() + 60_000
      while (c.idle !== true && !/"msg":"rules reloaded"|reload failed/.test(log.slice(mark)) && server.exitCode === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      // Two more seconds of stream after the reload, then the subscriber's figures.
      await new Promise((resolve) => setTimeout(resolve, 2000))
      pub.kill('SIGKILL')
      sub.kill('SIGUSR2')
      const figures = JSON.parse(await lastLine(sub)) as { gap: number, received: number }
      const lived = server.exitCode === null
      const ms = /"ms":([\d.]+)[^\n]*"msg":"rules reloaded"/.exec(log.slice(mark))?.[1]
      const outcome = c.idle === true ? 'none' : c.rejected === true ? (/reload failed/.test(log.slice(mark)) ? 'refused' : 'NOT refused') : (ms !== undefined ? `${fmt(Number(ms))} ms` : 'no reload logged')
      rows.push(`| ${c.name} | ${fmt(figures.gap, 1)} | ${outcome} | ${lived ? 'yes' : `no: ${/RangeError[^\n]*|FATAL[^\n]*/.exec(log)?.[0] ?? `exit ${String(server.exitCode)}`}`} |`)
    } finally {
      server.kill('SIGKILL')
      rmSync(base, { recursive: true, force: true })
    }
  }
  console.log(`# Reload stall (${machine()}; a paced ${fmt(RATE)} msg/s stream through one rule while the rules directory changes; ${quick ? '10,000-rule cases only (--quick)' : 'one run per case'})`)
  console.log()
  console.log('| change | longest gap between delivered messages, ms | reload | process lived |')
  console.log('| --- | ---: | ---: | --- |')
  for (const r of rows) console.log(r)
}

/** A 10 MB rules file the loader refuses: valid YAML, one rule with an unknown field. */
function refusedFile (): string {
  const filler = `# ${'x'.repeat(98)}\n`.repeat(100_000)
  return `version: 1\nrules:\n  - name: broken\n    form: a/b\n    to: [{ mqtt: x }]\n${filler}`
}

function node (args: string[]): ChildProcess {
  return spawn(process.execPath, [...scriptArgs(self), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
}

async function runRole (name: string, port: number): Promise<void> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
  ;(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
  if (name === 'publish') {
    const start = performance.now()
    for (let i = 0; ; i += 2) {
      const due = start + i / (RATE / 1000)
      while (performance.now() < due) await new Promise((resolve) => setImmediate(resolve))
      client.publish(`stream/${i}`, 'x')
      client.publish(`stream/${i + 1}`, 'x')
    }
  }
  let last = 0
  let gap = 0
  let received = 0
  client.on('message', () => {
    const now = performance.now()
    if (last > 0) gap = Math.max(gap, now - last)
    last = now
    received++
  })
  await client.subscribeAsync('streamed/#', { qos: 0 })
  process.stdout.write('ready\n')
  process.on('SIGUSR2', () => {
    process.stdout.write(JSON.stringify({ gap, received }) + '\n', () => process.exit(0))
  })
  setInterval(() => {}, 60_000)
}
