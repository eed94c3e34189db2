// Hot reload cost: a rules file of N rules is read, parsed, validated, compiled (loadRuleSet) and
// swapped into a running engine (router built), as a reload does. Medians of interleaved runs.
// Run with `npm run bench` (or `-- --quick`).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pino } from 'pino'
import type { Engine as EngineType } from '../engine/runtime/engine.js'
import { shipped } from './shipped.js'

const { Engine } = await shipped<typeof import('../engine/runtime/engine.js')>('engine/runtime/engine.js')
const { compileRuleFile } = await shipped<typeof import('../rules/compile/compile.js')>('rules/compile/compile.js')
const { loadSource } = await shipped<typeof import('../rules/source/load.js')>('rules/source/load.js')
const { SINK_SPECS } = await shipped<typeof import('../adapters/sink-specs.js')>('adapters/sink-specs.js')
const { ruleSchemaFor } = await shipped<typeof import('../rules/check/schema.js')>('rules/check/schema.js')
const { loadRuleSet } = await shipped<typeof import('../rules/compile/ruleset.js')>('rules/compile/ruleset.js')
const { SinkTable } = await shipped<typeof import('../rules/compile/sink-table.js')>('rules/compile/sink-table.js')
const { validateRuleFile } = await shipped<typeof import('../rules/check/validate.js')>('rules/check/validate.js')
const { SourceCache } = await shipped<typeof import('../rules/source/source-cache.js')>('rules/source/source-cache.js')

const quick = process.argv.includes('--quick')
const RUNS = quick ? 3 : 5
const SIZES = [1_000, 10_000]

/** N rules as an IoT site would have them: exact, `+` and `#` filters, a filter, a transform, a republish. */
function rulesFile (n: number): string {
  const out = ['version: 1', 'rules:']
  for (let i = 0; i < n; i++) {
    const from = i % 10 === 0 ? `site/line${i}/#rest` : i % 3 === 0 ? `sensors/+room/device${i}/temperature` : `plant/area${i % 97}/machine${i}/+metric`
    out.push(
      `  - name: rule-${i}`,
      `    from: ${from}`,
      `    where: { ">": [{ var: payload.value }, ${i % 50}] }`,
      '    set:',
      `      id: ${i}`,
      '      value: { var: payload.value }',
      '      doubled: { "*": [{ var: payload.value }, 2] }',
      '    to:',
      `      - mqtt: derived/${i}/out`
    )
  }
  return out.join('\n') + '\n'
}

/** An engine running the rules at these paths (loaded once, as at start-up), its outputs going nowhere. */
function engineFor (paths: string[]): EngineType {
  const first = loadRuleSet(paths, { sinkSpecs: SINK_SPECS })
  if (!first.ok) throw new Error(first.problems[0].message)
  return new Engine(first.ruleSet, { publish: (_out, done) => done(), logger: pino({ level: 'silent' }), maxHops: 8, deadLetterPrefix: '$dl' })
}

/**
 * A cold load (a fresh reloader cache) and then, after `edit` saves a change, the reload the
 * reloader would run, each swapped into the engine; `check` looks at the cache after the reload.
 */
function coldThenEdited (path: string, engine: EngineType, edit: (run: number) => void, check: (cache: InstanceType<typeof SourceCache>) => string | undefined = () => undefined): { cold: number[], edited: number[] } {
  const cold: number[] = []
  const edited: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const cache = new SourceCache()
    let t0 = performance.now()
    const all = loadRuleSet([path], { sinkSpecs: SINK_SPECS, cache })
    if (!all.ok) throw new Error(all.problems[0].message)
    engine.swap(all.ruleSet)
    cold.push(performance.now() - t0)
    edit(r)
    t0 = performance.now()
    const one = loadRuleSet([path], { sinkSpecs: SINK_SPECS, cache })
    if (!one.ok) throw new Error(one.problems[0].message)
    const wrong = check(cache)
    if (wrong !== undefined) throw new Error(wrong)
    engine.swap(one.ruleSet)
    edited.push(performance.now() - t0)
  }
  return { cold, edited }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

interface Phases { parse: number, validate: number, compile: number, swap: number }

/** One reload, phase by phase, the way loadRuleSet and Engine.swap run it. */
function reloadOnce (file: string, engine: EngineType): Phases {
  const t0 = performance.now()
  const loaded = loadSource(file)
  const t1 = performance.now()
  if (!loaded.ok) throw new Error(loaded.problems[0].message)
  const problems = validateRuleFile(loaded.source, ruleSchemaFor(SINK_SPECS))
  const t2 = performance.now()
  const sinks = new SinkTable(SINK_SPECS)
  sinks.addFile(loaded.source, problems)
  const compiled = compileRuleFile(loaded.source, sinks)
  const t3 = performance.now()
  if (problems.length + compiled.problems.length > 0) throw new Error('bench rules have problems')
  engine.swap({ rules: compiled.rules, sinks: sinks.all(), files: [file] })
  const t4 = performance.now()
  return { parse: t1 - t0, validate: t2 - t1, compile: t3 - t2, swap: t4 - t3 }
}

const dir = mkdtempSync(join(tmpdir(), 'signalbox-bench-'))
try {
  console.log(`# Reload: a rules file of N rules read and parsed (the fast YAML path; yaml only when it declines), validated (ajv), compiled, and swapped in (router built) (node ${process.version}; medians of ${RUNS} runs)`)
  console.log('| rules | file size | parse ms | validate ms | compile ms | swap ms | total ms |')
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  // An engine per size, already running that many rules (its counters exist): a reload swaps into it.
  const engines = new Map<number, EngineType>()
  for (const n of SIZES) {
    const file = join(dir, `rules-${n}.yaml`)
    const text = rulesFile(n)
    writeFileSync(file, text)
    const engine = engineFor([file])
    engines.set(n, engine)
    const runs: Phases[] = []
    for (let r = 0; r < RUNS; r++) runs.push(reloadOnce(file, engine))
    const m = (k: keyof Phases): number => median(runs.map((p) => p[k]))
    const total = m('parse') + m('validate') + m('compile') + m('swap')
    console.log(`| ${n.toLocaleString('en')} | ${(text.length / 1024 / 1024).toFixed(1)} MB | ${m('parse').toFixed(0)} | ${m('validate').toFixed(0)} | ${m('compile').toFixed(0)} | ${m('swap').toFixed(1)} | ${total.toFixed(0)} |`)
  }

  // A warning needs a position, and a position needs a yaml document: of the rule alone, not the whole file.
  console.log()
  console.log(`# Reload of a file with one warning (an output that can match its own filter), against the same file without (loadRuleSet + swap, as the reloader runs them; medians of ${RUNS} runs)`)
  console.log('| rules | no warning ms | one warning ms |')
  console.log('| ---: | ---: | ---: |')
  // The difference shows at 10,000 rules; --quick measures that size only.
  for (const n of quick ? [10_000] : SIZES) {
    const clean = join(dir, `clean-${n}.yaml`)
    const warned = join(dir, `warned-${n}.yaml`)
    const text = rulesFile(n)
    writeFileSync(clean, text)
    writeFileSync(warned, text.replace('      - mqtt: derived/5/out\n', '      - mqtt: plant/area5/machine5/loop\n'))
    const engine = engines.get(n)!
    const times: Record<string, number[]> = { [clean]: [], [warned]: [] }
    for (let r = 0; r < RUNS; r++) {
      for (const file of [clean, warned]) {
        const t0 = performance.now()
        const loaded = loadRuleSet([file], { sinkSpecs: SINK_SPECS })
        if (!loaded.ok || loaded.warnings.length !== (file === warned ? 1 : 0)) throw new Error(`unexpected problems in ${file}`)
        engine.swap(loaded.ruleSet)
        times[file].push(performance.now() - t0)
      }
    }
    console.log(`| ${n.toLocaleString('en')} | ${median(times[clean]).toFixed(0)} | ${median(times[warned]).toFixed(0)} |`)
  }

  // One big file, one rule edited: the reloader's cache reads and compiles the whole file again.
  console.log()
  console.log(`# Reload of one file, one rule edited between reloads (loadRuleSet with the reloader's SourceCache, then swap; medians of ${RUNS} runs)`)
  console.log('| rules | whole file read (cold) ms | one rule edited ms |')
  console.log('| ---: | ---: | ---: |')
  for (const n of SIZES) {
    const file = join(dir, `edited-${n}.yaml`)
    let text = rulesFile(n)
    writeFileSync(file, text)
    // The rule in the middle of the file gets a field more (its lines and every later rule's move).
    const id = `      id: ${Math.floor(n / 2)}\n`
    const { cold, edited } = coldThenEdited(file, engines.get(n)!, (r) => {
      text = text.replace(id, `${id}      edited_${r}: true\n`)
      writeFileSync(file, text)
    })
    console.log(`| ${n.toLocaleString('en')} | ${median(cold).toFixed(0)} | ${median(edited).toFixed(0)} |`)
  }

  // The usual edit: rules split over a directory, one file saved. The reloader's cache parses only that file.
  console.log()
  console.log(`# Reload of a directory: N rules in 100 files, one file edited between reloads (loadRuleSet with the reloader's SourceCache, then swap; medians of ${RUNS} runs)`)
  console.log('| rules | every file parsed (cold) ms | one file changed ms |')
  console.log('| ---: | ---: | ---: |')
  for (const n of SIZES) {
    const rulesDir = join(dir, `dir-${n}`)
    mkdirSync(rulesDir)
    const perFile = n / 100
    const lines = rulesFile(n).split('\n').slice(2)
    const ruleLines = lines.length / n
    for (let f = 0; f < 100; f++) {
      writeFileSync(join(rulesDir, `part-${String(f).padStart(3, '0')}.yaml`), ['version: 1', 'rules:', ...lines.slice(f * perFile * ruleLines, (f + 1) * perFile * ruleLines)].join('\n') + '\n')
    }
    const edited = join(rulesDir, 'part-050.yaml')
    const { cold, edited: warm } = coldThenEdited(rulesDir, engineFor([rulesDir]), () => {
      writeFileSync(edited, readFileSync(edited, 'utf8').replace('where: { ">": [{ var: payload.value }, ', 'where: { ">=": [{ var: payload.value }, '))
    })
    console.log(`| ${n.toLocaleString('en')} | ${median(cold).toFixed(0)} | ${median(warm).toFixed(0)} |`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
