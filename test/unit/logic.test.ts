// Differential tests: rules/logic/logic.ts against json-logic-js 2.0.5, the reference.
// Vectors: fixtures/vectors/jsonlogic-tests.json (jsonlogic.com's tests.json, via GoPlasmatic/datalogic-rs).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import jsonLogic from 'json-logic-js'
import { compileLogic, compileRecord, MAX_EXPRESSION_DEPTH } from '../../rules/logic/logic.js'
import { vectorPath } from '../helpers/paths.js'

type Case = [unknown, unknown, unknown]

function evaluate (rule: unknown, data: unknown): { value?: unknown, threw?: true } {
  const compiled = compileLogic(rule, { log: () => {} })
  if (!compiled.ok) return { threw: true }
  try {
    return { value: compiled.evaluate(data) }
  } catch {
    return { threw: true }
  }
}

function reference (rule: unknown, data: unknown): { value?: unknown, threw?: true } {
  try {
    return { value: jsonLogic.apply(rule as jsonLogic.RulesLogic, data) }
  } catch {
    return { threw: true }
  }
}

describe('logic', () => {
  describe('the official JsonLogic suite', () => {
    const suite = JSON.parse(readFileSync(vectorPath('jsonlogic-tests.json'), 'utf8')) as Array<string | Case>
    let section = ''
    let n = 0
    for (const entry of suite) {
      if (typeof entry === 'string') { section = entry; continue }
      const [rule, data, expected] = entry
      n++
      it(`#${n} ${section}: ${JSON.stringify(rule)}`, () => {
        assert.deepEqual(reference(rule, data), { value: expected }, 'the reference disagrees with the vector')
        assert.deepEqual(evaluate(rule, data), { value: expected })
      })
    }
  })

  describe('random expressions', () => {
    const leaf = fc.oneof(
      fc.integer({ min: -5, max: 5 }), fc.double({ noNaN: false }), fc.constantFrom('', '0', '1', 'a', 'b', 'x.y', '2.5'),
      fc.boolean(), fc.constant(null), fc.constantFrom({ var: 'a' }, { var: 'b' }, { var: 'x.y' }, { var: ['z', 7] }, { var: '' })
    )
    const ops = ['==', '===', '!=', '!==', '>', '>=', '<', '<=', '!!', '!', '%', 'in', 'cat', 'substr', '+', '*', '-', '/',
      'min', 'max', 'merge', 'if', '?:', 'and', 'or', 'missing', 'missing_some', 'var']
    const expr = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('op'), fc.array(tie('node'), { maxLength: 3 })),
      op: fc.tuple(fc.constantFrom(...ops), fc.array(tie('node'), { maxLength: 4 })).map(([op, args]) => ({ [op]: args }))
    })).node
    const scoped = fc.tuple(fc.constantFrom('map', 'filter', 'all', 'none', 'some', 'reduce'), expr)
      .map(([op, body]) => ({ [op]: [{ var: 'list' }, body, 0] }))
    const data = fc.record({
      a: fc.oneof(fc.integer(), fc.string({ maxLength: 3 }), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 })),
      b: fc.oneof(fc.integer(), fc.boolean(), fc.string({ maxLength: 3 })),
      x: fc.record({ y: fc.oneof(fc.integer(), fc.string({ maxLength: 2 })) }),
      list: fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 2 })), { maxLength: 4 })
    }, { requiredKeys: [] })

    it('gives the same result or the same failure as json-logic-js', () => {
      fc.assert(fc.property(fc.oneof(expr, scoped), data, (rule, d) => {
        assert.deepEqual(evaluate(rule, d), reference(rule, d))
      }), { numRuns: 3000, seed: 20261125 })
    })
  })

  describe('generated code', () => {
    const paths = fc.constantFrom('a', 'x.y', 'x.y.z', 'x.length', 'a.constructor', '__proto__.a', 'x.0', '0', 'list.1')
    const leaf = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constant(-0), fc.constantFrom('', '1', 'a'), fc.boolean(), fc.constant(null),
      paths.map((path) => ({ var: path })), fc.constant({}), fc.constant({ a: 1, b: 2 }))
    const ops = ['==', '===', '!=', '!==', '>', '>=', '<', '<=', '!!', '!', '%', '+', '*', '-', '/', 'if', '?:', 'and', 'or', 'in', 'cat']
    const expr = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('op')),
      op: fc.oneof(
        fc.tuple(fc.constantFrom(...ops), fc.array(tie('node'), { maxLength: 4 })).map(([op, args]) => ({ [op]: args })),
        // The one-argument form without a list: {"!": x}
        fc.tuple(fc.constantFrom('!', '!!', '-'), tie('node')).map(([op, arg]) => ({ [op]: arg }))
      )
    })).node
    const data = fc.record({
      a: fc.oneof(fc.integer(), fc.string({ maxLength: 2 }), fc.constant(null)),
      x: fc.oneof(fc.constant(null), fc.string({ maxLength: 2 }), fc.record({ y: fc.oneof(fc.integer(), fc.record({ z: fc.integer() }), fc.constant(null)) })),
      list: fc.array(fc.integer(), { maxLength: 3 })
    }, { requiredKeys: [] })

    it('gives what the closures give, value or failure', () => {
      fc.assert(fc.property(expr, fc.oneof(data, fc.constant(null), fc.constant(5)), (rule, d) => {
        const generated = compileLogic(rule, { log: () => {} })
        const closures = compileLogic(rule, { log: () => {}, codegen: false })
        assert.equal(generated.ok, closures.ok)
        if (!generated.ok || !closures.ok) return
        const run = (f: (x: unknown) => unknown): { value?: unknown, threw?: true } => { try { return { value: f(d) } } catch { return { threw: true } } }
        const a = run(generated.evaluate)
        const b = run(closures.evaluate)
        assert.deepEqual(a, b)
        if (typeof a.value === 'number' && Object.is(a.value, -0)) assert.ok(Object.is(b.value, -0))
      }), { numRuns: 3000, seed: 20261125 })
    })

    it('builds a set object as the closures build it: the same fields, in the same order, or the same failure', () => {
      const keys = fc.constantFrom('a', 'b', '1', '0', '__proto__', 'constructor', 'x y', '"', '\u2028')
      const fields = fc.uniqueArray(fc.tuple(keys, expr), { selector: ([k]) => k, minLength: 1, maxLength: 4 })
      fc.assert(fc.property(fields, fc.oneof(data, fc.constant(null)), (entries, d) => {
        if (!entries.every(([, e]) => compileLogic(e, { log: () => {} }).ok)) return
        const run = (f: (x: unknown) => unknown): { value?: unknown, threw?: true } => { try { return { value: f(d) } } catch { return { threw: true } } }
        const a = run(compileRecord(entries, { log: () => {} }))
        const b = run(compileRecord(entries, { log: () => {}, codegen: false }))
        assert.deepEqual(a, b)
        if (a.value === undefined) return
        assert.equal(Object.getPrototypeOf(a.value), Object.prototype)
        assert.deepEqual(Object.keys(a.value as object), Object.keys(b.value as object))
        assert.equal(JSON.stringify(a.value), JSON.stringify(b.value))
      }), { numRuns: 2000, seed: 20261125 })
    })

    it('keeps a set field named __proto__ as a field, not the prototype', () => {
      const build = compileRecord([['__proto__', { var: 'payload' }], ['b', 1]])
      const out = build({ payload: { polluted: true } })
      assert.equal(JSON.stringify(out), '{"__proto__":{"polluted":true},"b":1}')
      assert.equal((out as { polluted?: boolean }).polluted, undefined)
    })

    it('cannot be made to run code by a key or a string in the rule', () => {
      const g = globalThis as { pwned?: number }
      const hostile = '"]) || (globalThis.pwned = 1) || (["'
      for (const rule of [{ var: hostile }, { '==': [hostile, `'${hostile}`] }, { var: `a.${hostile}` }, { '==': [{ var: 'a' }, '\u2028\\"); globalThis.pwned = 1; ("'] }]) {
        const compiled = compileLogic(rule)
        assert.ok(compiled.ok)
        compiled.evaluate({ a: 1 })
      }
      compileRecord([[hostile, 1], ['"]: (globalThis.pwned = 1), ["', { var: hostile }]])({ a: 1 })
      assert.equal(g.pwned, undefined)
    })
  })

  describe('compile checks', () => {
    it('refuses an unknown operator and suggests the nearest', () => {
      const r = compileLogic({ and: [{ '>': [1, 0] }, { '=>': [1, 2] }] })
      assert.equal(r.ok, false)
      if (r.ok) return
      assert.equal(r.error.code, 'UNKNOWN_OPERATOR')
      assert.deepEqual(r.error.path, ['and', 1, '=>'])
      assert.match(r.error.message, /did you mean '>='/)
    })

    it('refuses an expression nested deeper than the limit', () => {
      let e: unknown = 1
      for (let i = 0; i < 10000; i++) e = { '!': [e] }
      const r = compileLogic(e)
      assert.equal(r.ok, false)
      if (!r.ok) assert.equal(r.error.code, 'BAD_EXPRESSION')
      let ok: unknown = 1
      for (let i = 0; i < MAX_EXPRESSION_DEPTH / 2; i++) ok = { '!': [ok] }
      assert.equal(compileLogic(ok).ok, true)
    })

    it('does not read inherited properties through var', () => {
      const r = compileLogic({ var: 'payload.constructor' })
      assert.ok(r.ok)
      if (r.ok) assert.equal(r.evaluate({ payload: {} }), null)
      for (const key of ['toString', 'payload.hasOwnProperty', 'payload.__proto__', 'payload.list.map', 'payload.s.charAt', 'payload.n.toFixed']) {
        const c = compileLogic({ var: key })
        assert.ok(c.ok)
        if (c.ok) assert.equal(c.evaluate({ payload: { list: [1], s: 'x', n: 1 } }), null, key)
      }
      const own = compileLogic({ var: 'payload.list.length' })
      if (own.ok) assert.equal(own.evaluate({ payload: { list: [1, 2] } }), 2)
    })

    it('reports whether an expression reads payload fields, and which top-level ones', () => {
      const usage = (e: unknown): unknown => { const r = compileLogic(e); return r.ok ? r.usage : undefined }
      const fields = (...names: string[]): readonly string[] => names
      assert.deepEqual(usage({ '>': [{ var: 'payload.celsius' }, 30] }), { payload: true, payloadFields: true, topFields: fields('celsius'), clock: false })
      assert.deepEqual(usage({ cat: [{ var: 'payload' }] }), { payload: true, payloadFields: false, topFields: null, clock: false })
      assert.deepEqual(usage({ '==': [{ var: 'params.room' }, 'kitchen'] }), { payload: false, payloadFields: false, topFields: fields(), clock: false })
      assert.deepEqual(usage({ map: [{ var: 'params.list' }, { var: 'payload.x' }] }), { payload: false, payloadFields: false, topFields: fields(), clock: false })
      assert.deepEqual(usage({ and: [{ var: 'payload.a.b' }, { var: ['payload.c', 1] }, { missing_some: [1, ['payload.d', 'meta.qos']] }] }), { payload: true, payloadFields: true, topFields: fields('a', 'c', 'd'), clock: false })
      // A name computed per message, or the whole data object, can reach any field.
      assert.deepEqual(usage({ var: { cat: ['payload.', { var: 'params.f' }] } }), { payload: true, payloadFields: false, topFields: null, clock: true })
      assert.deepEqual(usage({ '+': [{ var: 'payload.x' }, { var: '' }] }), { payload: true, payloadFields: true, topFields: null, clock: true })
      assert.deepEqual(usage({ missing: { var: 'params.names' } }), { payload: true, payloadFields: false, topFields: null, clock: true })
      // The arrival time: meta.receivedAt, or meta whole.
      assert.deepEqual(usage({ '-': [{ var: 'meta.receivedAt' }, 1] }), { payload: false, payloadFields: false, topFields: fields(), clock: true })
      assert.deepEqual(usage({ var: 'meta' }), { payload: false, payloadFields: false, topFields: fields(), clock: true })
      assert.deepEqual(usage({ var: 'meta.qos' }), { payload: false, payloadFields: false, topFields: fields(), clock: false })
    })
  })
})
