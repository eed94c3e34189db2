// JsonLogic: json-logic-js.apply (the reference) against rules/logic/logic.ts closures, same expressions, same data,
// interleaved runs in one process, medians reported. Run with `npm run bench` (or `-- --quick`).
import { cpus } from 'node:os'
import jsonLogic from 'json-logic-js'
import { shipped } from './shipped.js'

const { compileLogic } = await shipped<typeof import('../rules/logic/logic.js')>('rules/logic/logic.js')

const quick = process.argv.includes('--quick')
const RUNS = quick ? 3 : 5
const ITERATIONS = quick ? 200_000 : 1_000_000

const cases: Array<{ name: string, rule: unknown, data: unknown }> = [
  {
    name: 'filter: 2 conditions',
    rule: { and: [{ '>': [{ var: 'payload.celsius' }, 30] }, { '==': [{ var: 'params.room' }, 'kitchen'] }] },
    data: { params: { room: 'kitchen' }, payload: { celsius: 31 } }
  },
  {
    name: 'transform: °C → °F',
    rule: { '+': [{ '*': [{ var: 'payload.celsius' }, 1.8] }, 32] },
    data: { payload: { celsius: 31 } }
  },
  {
    name: 'if / in / cat',
    rule: { if: [{ in: [{ var: 'params.room' }, ['kitchen', 'hall']] }, { cat: ['alert ', { var: 'params.room' }] }, 'none'] },
    data: { params: { room: 'hall' } }
  }
]

function opsPerSecond (fn: () => unknown): number {
  let sink: unknown
  const start = process.hrtime.bigint()
  for (let i = 0; i < ITERATIONS; i++) sink = fn()
  const ns = Number(process.hrtime.bigint() - start)
  if (sink === Symbol.for('never')) console.log(sink)
  return ITERATIONS / (ns / 1e9)
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

console.log(`# JsonLogic: json-logic-js.apply vs compiled closures (${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, node ${process.version}; medians of ${RUNS} interleaved runs of ${ITERATIONS} ops)`)
console.log('| expression | json-logic-js ops/s | compiled ops/s | ratio | compiled ns/op |')
console.log('| --- | ---: | ---: | ---: | ---: |')
for (const c of cases) {
  const compiled = compileLogic(c.rule)
  if (!compiled.ok) throw new Error(compiled.error.message)
  const evaluate = compiled.evaluate
  const reference: number[] = []
  const ours: number[] = []
  for (let r = 0; r < RUNS; r++) {
    reference.push(opsPerSecond(() => jsonLogic.apply(c.rule as jsonLogic.RulesLogic, c.data)))
    ours.push(opsPerSecond(() => evaluate(c.data)))
  }
  const ref = median(reference)
  const mine = median(ours)
  console.log(`| ${c.name} | ${Math.round(ref).toLocaleString('en')} | ${Math.round(mine).toLocaleString('en')} | ${(mine / ref).toFixed(1)}× | ${(1e9 / mine).toFixed(1)} |`)
}
