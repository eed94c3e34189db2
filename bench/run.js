// npm run bench [-- --quick]: each benchmark in its own process (with --expose-gc), one after another,
// so one cannot warm up or slow down the next. Plain JavaScript so it runs without the TypeScript loader.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const benches = ['router', 'logic', 'reload', 'memory', 'broker', 'scaleout']
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'))
let failed = false
for (const name of benches) {
  if (only.length > 0 && !only.includes(name)) continue
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url))
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', file, ...flags], { stdio: 'inherit' })
  if (r.status !== 0) { failed = true; console.error(`bench ${name} failed (exit ${r.status})`) }
  console.log()
}
process.exitCode = failed ? 1 : 0
