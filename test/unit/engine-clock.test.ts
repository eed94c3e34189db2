// The engine reads the clock once per message, and only when a rule reads the arrival time.
import assert from 'node:assert/strict'
import { engineFor, ruleSetFor } from '../helpers/engine.js'

function counting (): { now: () => number, calls: () => number } {
  let calls = 0
  return { now: () => { calls++; return 1_764_000_000_000 + calls }, calls: () => calls }
}

const message = { topic: 's/k', payload: Buffer.from('{"v": 1}'), qos: 0 as const, retain: false, clientId: 'c', hops: 0 }
const rule = (name: string, extra: string): string => `  - name: ${name}\n    from: s/+room\n${extra}`

describe('engine clock', () => {
  it('does not read the clock for rules that never see the arrival time', () => {
    const clock = counting()
    const { engine, published } = engineFor(`version: 1\nrules:\n${rule('plain', '    where: { var: payload.v }\n    set: { v: { var: payload.v }, qos: { var: meta.qos } }\n    to: [{ mqtt: "out/{room}" }]\n')}`, { now: clock.now })
    engine.handle(message)
    assert.equal(published.length, 1)
    assert.equal(clock.calls(), 0)
  })

  it('reads it once per message for every rule that reads meta.receivedAt or meta, and gives them the same time', () => {
    const clock = counting()
    const { engine, published } = engineFor(`version: 1\nrules:\n${rule('first', '    set: { at: { var: meta.receivedAt } }\n    to: [{ mqtt: a }]\n')}${rule('second', '    set: { meta: { var: meta } }\n    to: [{ mqtt: b }]\n')}`, { now: clock.now })
    engine.handle(message)
    engine.handle(message)
    assert.equal(clock.calls(), 2)
    const [a1, b1, a2] = published.map((m) => JSON.parse(m.payload.toString()) as { at?: number, meta?: { receivedAt: number } })
    assert.equal(a1.at, 1_764_000_000_001)
    assert.equal(b1.meta?.receivedAt, 1_764_000_000_001)
    assert.equal(a2.at, 1_764_000_000_002)
  })

  it('reads it for a {meta.receivedAt} template and for a rule that reads a name computed per message', () => {
    for (const extra of ['    to: [{ mqtt: "t/{meta.receivedAt}" }]\n', '    where: { var: { cat: ["meta.", "receivedAt"] } }\n    to: [{ mqtt: t }]\n']) {
      const clock = counting()
      const { engine, published } = engineFor(`version: 1\nrules:\n${rule('r', extra)}`, { now: clock.now })
      engine.handle(message)
      assert.equal(clock.calls(), 1, extra)
      assert.equal(published.length, 1, extra)
    }
  })
})

describe('rules that read the clock', () => {
  it('include every rule with a sink output: its delivery time is measured from arrival', () => {
    const ruleSet = ruleSetFor(`version: 1\nrules:\n${rule('to-file', '    to: [{ file: "out/{room}.jsonl" }]\n')}${rule('to-mqtt', '    to: [{ mqtt: "out/{room}" }]\n')}`)
    assert.deepEqual(ruleSet.rules.map((r) => [r.name, r.readsClock]), [['to-file', true], ['to-mqtt', false]])
  })
})
