// The engine never throws out of handle(), whatever the topic or payload; every output is accounted for.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { pino } from 'pino'
import type { OutMessage } from '../../rules/model/message.js'
import { Engine } from '../../engine/runtime/engine.js'
import { loadRuleSet } from '../../rules/compile/ruleset.js'
import { fixturePath } from '../helpers/paths.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'

describe('engine (no sockets)', () => {
  it('survives random topics and payloads, counting every matched message exactly once', () => {
    const loaded = loadRuleSet([fixturePath('rules')], { sinkSpecs: SINK_SPECS })
    assert.ok(loaded.ok)
    const published: OutMessage[] = []
    // Publishing is the broker's job; here outputs are collected so the counts can be checked.
    const engine = new Engine(loaded.ruleSet, { publish: (out, done) => { published.push(out); done() }, logger: pino({ level: 'silent' }), maxHops: 8, deadLetterPrefix: '$dl' })
    const level = fc.oneof(fc.constantFrom('sensors', 'home', 'doors', 'temperature', 'battery', '', 'a'), fc.string({ maxLength: 4 }))
    const name = fc.string({ maxLength: 5 })
    const topic = fc.oneof(
      fc.array(level, { minLength: 1, maxLength: 6 }).map((ls) => ls.join('/')).filter((t) => t.length > 0),
      name.map((room) => `sensors/${room}/temperature`),
      fc.tuple(name, name).map(([room, device]) => `sensors/${room}/${device}/battery`),
      fc.array(name, { maxLength: 3 }).map((rest) => ['home', 'doors', ...rest].join('/'))
    )
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')),
      fc.record({ celsius: fc.oneof(fc.double(), fc.string(), fc.constant(null)), percent: fc.integer() }).map((v) => Buffer.from(JSON.stringify(v)))
    )
    fc.assert(fc.property(topic, payload, (t, p) => {
      engine.handle({ topic: t, payload: p, qos: 0, retain: false, clientId: 'fuzz', hops: 0 })
    }), { numRuns: 3000, seed: 7 })
    const { engine: totals, rules } = engine.snapshot()
    assert.equal(totals.received, 3000)
    // The generator must reach the rules, or the test proves nothing.
    for (const name of ['hot-room', 'low-battery', 'door-log']) assert.ok(rules[name].matched > 10, `${name} matched ${rules[name].matched}`)
    let outputs = 0
    for (const c of Object.values(rules)) {
      assert.equal(c.matched, c.passed + c.filtered + (c.errors - c.dropped), JSON.stringify(c))
      outputs += c.published
    }
    assert.equal(published.length, outputs + totals.deadLettered)
  })
})
