// What each hand-written fast path buys end to end, measured against the shipped signalbox with
// that path taken out (bench/variants.ts), interleaved in one run:
//  - the fast YAML path: `signalbox check` of one 10,000-rule file and of a 50,000-rule directory,
//    the time from starting the process to its exit (what a cold start or `check` costs a user);
//  - the payload picker and the generated code for where/set: the broker bench's floods through
//    1,000 rules (accepted rate and server CPU per input message) of ~450-byte reports whose
//    three fields the rules read among 30 they do not, by `broker.js --fast-paths`.
// Run it alone with `npm run bench -- fast-paths` (add --quick for a short run).
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fmt, machine, median, quick } from './stats.js'
import { routerWorkload } from './workload.js'
import { rulesYaml } from './rules-file.js'
import { projectRoot, scriptArgs } from './root.js'
import { describeVariant, signalboxWithout } from './variants.js'

const RUNS = quick ? 3 : 7

function checkMs (bin: string, path: string): number {
  const start = performance.now()
  const r = spawnSync(process.execPath, [bin, 'check', path], { encoding: 'utf8' })
  const ms = performance.now() - start
  if (r.status !== 0) throw new Error(`signalbox check ${path} failed: ${r.stdout}${r.stderr}`)
  return ms
}

const dir = mkdtempSync(join(tmpdir(), 'signalbox-bench-'))
try {
  const single = join(dir, 'rules-10000.yaml')
  writeFileSync(single, rulesYaml(routerWorkload(10_000, 1).filters))
  const directory = join(dir, 'rules-50000')
  mkdirSync(directory)
  const { filters } = routerWorkload(50_000, 1)
  for (let f = 0; f < 5; f++) writeFileSync(join(directory, `part-${f}.yaml`), rulesYaml(filters.slice(f * 10_000, (f + 1) * 10_000), f * 10_000))
  const shipped = join(projectRoot, 'bin', 'signalbox.js')
  const without = signalboxWithout('fast-yaml')
  const cases = [{ name: 'one file of 10,000 rules', path: single }, { name: 'a directory of 5 files, 50,000 rules', path: directory }]
  const times = cases.map(() => ({ shipped: [] as number[], without: [] as number[] }))
  for (let run = 0; run < RUNS; run++) {
    for (const [i, c] of cases.entries()) {
      // Alternate which goes first, so neither always has the warmer file cache.
      const order = run % 2 === 0 ? ['shipped', 'without'] as const : ['without', 'shipped'] as const
      for (const which of order) times[i][which].push(checkMs(which === 'shipped' ? shipped : without, c.path))
    }
  }
  console.log(`# Fast paths end to end (${machine()}; medians of ${RUNS} interleaved runs)`)
  console.log()
  console.log(`\`signalbox check\`, process start to exit, ms: signalbox against signalbox ${describeVariant('fast-yaml')}:`)
  console.log()
  console.log('| rules | signalbox | without the fast YAML path | saved |')
  console.log('| --- | ---: | ---: | ---: |')
  for (const [i, c] of cases.entries()) {
    const a = median(times[i].shipped)
    const b = median(times[i].without)
    console.log(`| ${c.name} | ${fmt(a)} | ${fmt(b)} | ${fmt(b - a)} ms (${(b / a).toFixed(2)}×) |`)
  }
  console.log()
} finally {
  rmSync(dir, { recursive: true, force: true })
}

const broker = fileURLToPath(new URL('./broker.' + (import.meta.url.endsWith('.ts') ? 'ts' : 'js'), import.meta.url))
const child = spawn(process.execPath, [...scriptArgs(broker), '--fast-paths', ...(quick ? ['--quick'] : [])], { stdio: 'inherit' })
process.exitCode = await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)))
