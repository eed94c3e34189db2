// Fuzzing the rule compiler and the router through their public entry points: whatever the input,
// nothing throws; bad input comes back as problems with a position. Bounded in time.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { stringify } from 'yaml'
import { compileRuleFile } from '../../rules/compile/compile.js'
import { parseSource } from '../../rules/source/load.js'
import { parsePattern } from '../../rules/model/pattern.js'
import { SinkTable } from '../../rules/compile/sink-table.js'
import { validateRuleFile } from '../../rules/check/validate.js'
import { Router } from '../../engine/runtime/router.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'
import { ruleSchemaFor } from '../../rules/check/schema.js'

/** Everything `signalbox check` does to one file's text; returns the problems. Throws only on a bug. */
function check (text: string): Array<{ line: number, col: number }> {
  const parsed = parseSource('fuzz.yaml', text)
  if (!parsed.ok) return parsed.problems
  const problems = validateRuleFile(parsed.source, ruleSchemaFor(SINK_SPECS))
  const sinks = new SinkTable(SINK_SPECS)
  sinks.addFile(parsed.source, problems)
  return [...problems, ...compileRuleFile(parsed.source, sinks).problems]
}

const LIMIT = { interruptAfterTimeLimit: 4000, markInterruptAsFailure: false }
const piece = fc.constantFrom('+', '#', '/', '+room', '#rest', 'a', '$SYS', '', '\u0000', '{', '}', '{room}', '{payload.x}', '.', '*', '>', ' ', 'é')
const messy = fc.array(piece, { maxLength: 8 }).map((ps) => ps.join(''))
const operator = fc.constantFrom('var', 'if', '==', '===', '!', 'and', 'or', '+', '*', 'in', 'cat', 'map', 'reduce', 'missing', 'merge', 'nope', '__proto__', 'constructor')
const logic: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  expr: fc.oneof({ depthSize: 'small' },
    fc.jsonValue({ maxDepth: 2 }),
    fc.tuple(operator, fc.array(tie('expr'), { maxLength: 3 })).map(([op, args]) => ({ [op]: args })),
    fc.tuple(operator, tie('expr')).map(([op, arg]) => ({ [op]: arg })))
})).expr
const output = fc.oneof(
  messy.map((t) => ({ mqtt: t })),
  fc.record({ sink: fc.constantFrom('bus', 'file', 'missing'), subject: fc.option(messy, { nil: undefined }), path: fc.option(messy, { nil: undefined }) }),
  messy.map((s) => ({ nats: s })),
  messy.map((p) => ({ file: p })),
  fc.dictionary(fc.constantFrom('mqtt', 'qos', 'retain', 'sink', 'x'), fc.jsonValue({ maxDepth: 1 }))
)
const rule = fc.record({
  name: fc.oneof(fc.constantFrom('r', 'r', 'a-b'), fc.string({ maxLength: 6 })),
  from: fc.oneof(messy, fc.jsonValue({ maxDepth: 1 })),
  where: fc.option(logic, { nil: undefined }),
  set: fc.option(fc.dictionary(fc.constantFrom('a', 'b', '__proto__', 'room'), logic, { maxKeys: 3 }), { nil: undefined }),
  to: fc.oneof(fc.array(output, { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })),
  on_error: fc.option(fc.constantFrom('drop', 'dead_letter', 'explode'), { nil: undefined })
}, { requiredKeys: [] })
const file = fc.record({
  version: fc.constantFrom(1, 2, '1'),
  sinks: fc.option(fc.dictionary(fc.constantFrom('bus', 'file', 'x y'), fc.record({ type: fc.constantFrom('nats', 'file', 'mqtt', 'kafka'), path: fc.option(messy, { nil: undefined }), url: fc.option(messy, { nil: undefined }) }, { requiredKeys: ['type'] })), { nil: undefined }),
  rules: fc.array(rule, { maxLength: 4 })
}, { requiredKeys: ['rules'] })

describe('fuzz: rule compiler and router', () => {
  it('never throws on random rules files, and every problem has a position', () => {
    fc.assert(fc.property(file, (data) => {
      for (const p of check(stringify(data))) assert.ok(p.line >= 1 && p.col >= 1)
    }), { numRuns: 2000, ...LIMIT })
  }).timeout(60000) // a heavy property test: its own bound, not the suite's 20 s

  it('never throws on random text, including broken YAML', () => {
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.array(fc.constantFrom('version: 1\n', 'rules:\n', '  - name: r\n', '    from: a/+b\n', '    to: [{ mqtt: "x/{b}" }]\n', '&a [*a]\n', '{', ': :', '\t', '- - -\n', '"\\u0000"\n'), { maxLength: 12 }).map((ls) => ls.join('')))
    fc.assert(fc.property(text, (t) => { check(t) }), { numRuns: 2000, ...LIMIT })
  })

  it('the router never throws on random filters (valid ones added) and random topics', () => {
    fc.assert(fc.property(fc.array(messy, { maxLength: 20 }), fc.array(messy, { maxLength: 20 }), (filters, topics) => {
      const router = new Router<number>()
      filters.forEach((f, i) => {
        const parsed = parsePattern(f)
        if (parsed.ok) router.add(parsed.pattern.filter, i)
      })
      for (const t of topics) router.match(t)
    }), { numRuns: 2000, ...LIMIT })
  })
})
