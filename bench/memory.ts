// Memory: RSS after 100k and after 1M messages through 100 rules (in process, no sockets), after a
// full collection each time; the rule set is the seeded workload of bench/workload.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { shipped } from './shipped.js'

const { Engine } = await shipped<typeof import('../engine/runtime/engine.js')>('engine/runtime/engine.js')
const { SINK_SPECS } = await shipped<typeof import('../adapters/sink-specs.js')>('adapters/sink-specs.js')
const { loadRuleSet } = await shipped<typeof import('../rules/compile/ruleset.js')>('rules/compile/ruleset.js')
import { collect, fmt, machine, quick } from './stats.js'
import { random, routerWorkload } from './workload.js'
import { rulesYaml } from './rules-file.js'

const TOTAL = quick ? 300_000 : 1_000_000
const FIRST = 100_000
const dir = mkdtempSync(join(tmpdir(), 'signalbox-bench-'))
try {
  const { filters, topics } = routerWorkload(100, 20_000)
  writeFileSync(join(dir, 'rules.yaml'), rulesYaml(filters))
  const loaded = loadRuleSet([join(dir, 'rules.yaml')], { sinkSpecs: SINK_SPECS })
  if (!loaded.ok) throw new Error(loaded.problems[0].message)
  let outputs = 0
  const engine = new Engine(loaded.ruleSet, { publish: (_out, done) => { outputs++; done() }, logger: pino({ level: 'silent' }), maxHops: 8, deadLetterPrefix: '$dl' })
  const rnd = random(7)
  const rss: number[] = []
  for (let i = 1; i <= TOTAL; i++) {
    const payload = Buffer.from(JSON.stringify({ seq: i, value: Math.floor(rnd() * 100), t: 0 }))
    engine.handle({ topic: topics[i % topics.length], payload, qos: 0, retain: false, clientId: 'bench', hops: 0 })
    if (i === FIRST || i === TOTAL) { collect(); rss.push(process.memoryUsage().rss / 1024 / 1024) }
  }
  console.log(`# Memory: RSS through 100 rules (${machine()}; ${fmt(outputs)} outputs)`)
  console.log('| after 100k messages | after ' + fmt(TOTAL) + ' | growth |')
  console.log('| ---: | ---: | ---: |')
  console.log(`| ${rss[0].toFixed(1)} MB | ${rss[1].toFixed(1)} MB | ${(((rss[1] / rss[0]) - 1) * 100).toFixed(1)} % |`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
