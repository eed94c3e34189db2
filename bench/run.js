// npm run bench [-- --quick]: each benchmark in its own process (with --expose-gc), one after another,
// so one cannot warm up or slow down the next. npm run bench compiles the code and the benchmarks
// (dist/, dist/bench/); the benchmarks' client processes then start without the TypeScript loader.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const benches = ['router', 'logic', 'decode', 'reload', 'reload-stall', 'memory', 'broker', 'slow-consumers', 'scaleout', 'fast-paths', 'durability', 'sys-reports', 'postgres']
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'))
let failed = false
for (const name of benches) {
  if (only.length > 0 && !only.includes(name)) continue
  const file = fileURLToPath(new URL(`../dist/bench/${name}.js`, import.meta.url))
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm run bench, which compiles the benchmarks`)
  const r = spawnSync(process.execPath, ['--expose-gc', file, ...flags], { stdio: 'inherit' })
  if (r.status !== 0) { failed = true; console.error(`bench ${name} failed (exit ${r.status})`) }
  console.log()
}
process.exitCode = failed ? 1 : 0
