// $SYS/signalbox reports and delivery (issue 19): a paced 2,000 msg/s stream through one rule of
// `signalbox run` holding 10,000 or 100,000 rules in all, with reports every second and with
// reports off. For each: the longest gap between two delivered messages over 5 s (5 rounds of
// reports), and, with no traffic, the server's CPU over 10 s. Server, publisher and subscriber are
// processes of their own (the publisher and subscriber are reload-stall's).
// Run it alone with `npm run bench -- sys-reports` (add --quick for 10,000 rules only).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuTicks, firstLine, freePort, lastLine, waitForPort } from './processes.js'
import { projectRoot } from './root.js'
import { rulesYaml } from './rules-file.js'
import { fmt, machine, quick } from './stats.js'
import { routerWorkload } from './workload.js'

const STREAM_RULE = 'version: 1\nrules:\n  - name: stream\n    from: stream/+n\n    to: [{ mqtt: "streamed/{n}", qos: 0 }]\n'
const roles = fileURLToPath(new URL('./reload-stall.js', import.meta.url))
const sizes = quick ? [10_000] : [10_000, 100_000]

const rows: string[] = []
for (const size of sizes) {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-bench-sys-'))
  try {
    const rulesDir = join(dir, 'rules')
    mkdirSync(rulesDir)
    writeFileSync(join(rulesDir, 'stream.yaml'), STREAM_RULE)
    // Files of 10,000 rules (a file may hold 10 MB).
    const { filters } = routerWorkload(size, 1)
    for (let f = 0; f * 10_000 < size; f++) writeFileSync(join(rulesDir, `part-${f}.yaml`), rulesYaml(filters.slice(f * 10_000, (f + 1) * 10_000), f * 10_000))
    const figures: Record<'off' | 'on', { gap: number, cpu: number }> = { off: { gap: 0, cpu: 0 }, on: { gap: 0, cpu: 0 } }
    for (const reports of ['off', 'on'] as const) {
      const port = await freePort()
      let log = ''
      const server = spawn(process.execPath, [join(projectRoot, 'bin', 'signalbox.js'), 'run', '--no-watch', '--log-level', 'info', '--sys-interval', reports === 'on' ? '1' : '0', '--data-dir', join(dir, `data-${reports}`), '--port', String(port), rulesDir], { stdio: ['ignore', 'ignore', 'pipe'] })
      server.stderr!.on('data', (d: Buffer) => { log += d.toString() })
      try {
        // 100,000 rules take a while to load: wait for the listening line, then for the port.
        const deadline = Date.now() + 180_000
        while (!/listening on/.test(log) && server.exitCode === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
        if (server.exitCode !== null) throw new Error(`signalbox did not start: ${log.slice(-2000)}`)
        await waitForPort(port)
        // The first round sends every rule's report: let it pass, then measure the steady rounds.
        await new Promise((resolve) => setTimeout(resolve, 3000))
        const idleBefore = cpuTicks(server.pid!)
        await new Promise((resolve) => setTimeout(resolve, 10_000))
        figures[reports].cpu = (cpuTicks(server.pid!) - idleBefore) / 10 // ticks of 10 ms over 10 s: % of a core
        const sub = role(['subscribe', String(port)])
        await firstLine(sub)
        const pub = role(['publish', String(port)])
        await new Promise((resolve) => setTimeout(resolve, 5000))
        pub.kill('SIGKILL')
        sub.kill('SIGUSR2')
        figures[reports].gap = (JSON.parse(await lastLine(sub)) as { gap: number }).gap
        if (server.exitCode !== null) throw new Error(`signalbox died: ${/RangeError[^\n]*|FATAL[^\n]*/.exec(log)?.[0] ?? `exit ${String(server.exitCode)}`}`)
      } finally {
        server.kill('SIGKILL')
      }
    }
    rows.push(`| ${fmt(size)} | ${fmt(figures.off.gap, 1)} | ${fmt(figures.on.gap, 1)} | ${figures.off.cpu.toFixed(1)} % | ${figures.on.cpu.toFixed(1)} % |`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
console.log(`# $SYS/signalbox reports and delivery (${machine()}; a paced 2,000 msg/s stream through one rule for 5 s; reports every second, or off; idle CPU over 10 s with no traffic)`)
console.log()
console.log('| rules | longest gap, reports off, ms | reports every 1 s, ms | idle CPU, reports off | reports every 1 s |')
console.log('| ---: | ---: | ---: | ---: | ---: |')
for (const r of rows) console.log(r)

function role (args: string[]): ChildProcess {
  return spawn(process.execPath, [roles, '--role', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
}
