// Differential: what `signalbox test`'s offline engine predicts a rule set emits must be, message
// for message (topic, payload, QoS), what real subscribers on overlapping wildcard filters receive
// from `signalbox run`. Random rule sets (fan-out, chains, loops cut at max_hops, outputs of mixed
// QoS, retain) and random input streams, from a fixed seed (the benchmarks' seeded generator).
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { random } from '../../bench/workload.js'
import { OfflineRunner } from '../../engine/tools/offline.js'
import { topicMatches } from '../../rules/model/pattern.js'
import { loadRuleSet } from '../../rules/compile/ruleset.js'
import { startRun } from '../helpers/cli.js'
import { Latch } from '../helpers/latch.js'
import { connect } from '../helpers/mqtt.js'
import { tempDir } from '../helpers/signalbox.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'

type Qos = 0 | 1 | 2

const LEVELS = ['a', 'b', 'c']

/** A rule set over topics of LEVELS: outputs land in d/… (fan-out) or back among the inputs (chains, loops). */
function ruleSet (next: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]
  const filters = ['+x/+y', 'a/+x', '+x/b', 'a/#rest', '+x', 'c/+x/+y', 'b/+x/#rest', 'a/b']
  const lines = ['version: 1', 'rules:']
  const rules = 3 + Math.floor(next() * 5)
  for (let r = 0; r < rules; r++) {
    const from = pick(filters)
    const captures = [...from.matchAll(/[+#](\w+)/g)].map((m) => m[1])
    const cap = (): string => captures.length > 0 ? `{${pick(captures)}}` : pick(LEVELS)
    lines.push(`  - name: r${r}`, `    from: ${from}`)
    if (next() < 0.4) lines.push(`    where: { ">": [{ var: payload.v }, ${Math.floor(next() * 6)}] }`)
    if (next() < 0.5) lines.push(`    set: { v: { "+": [{ var: payload.v }, 1] }, n: { var: payload.n }, by: r${r} }`)
    lines.push('    to:')
    const outputs = 1 + Math.floor(next() * 3)
    for (let o = 0; o < outputs; o++) {
      // A capture that is a '#' one may span levels: that is allowed in a topic template.
      const topic = next() < 0.6 ? `d/${cap()}/${pick(LEVELS)}` : `${pick(LEVELS)}/${cap()}`
      const qos = next() < 0.25 ? '' : `, qos: ${pick([0, 1, 2])}`
      const retain = next() < 0.15 ? ', retain: true' : ''
      lines.push(`      - { mqtt: "${topic}"${qos}${retain} }`)
    }
  }
  return lines.join('\n') + '\n'
}

interface Input { topic: string, payload: string, qos: Qos }

function inputs (next: () => number, n: number): Input[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]
  return Array.from({ length: n }, (_, i) => {
    const depth = 1 + Math.floor(next() * 3)
    const topic = Array.from({ length: depth }, () => pick(LEVELS)).join('/')
    return { topic, payload: JSON.stringify({ v: Math.floor(next() * 8), n: i }), qos: pick([0, 1, 2] as const) }
  })
}

/** Overlapping subscriptions at mixed QoS, one client each. */
const SUBSCRIBERS: Array<Record<string, Qos>> = [
  { '#': 2 },
  { 'd/#': 1, 'd/+/+': 0 },
  { '+/b': 2, 'a/#': 0, 'd/+/a': 1 },
  { 'a/b': 0, 'b/+': 1, 'c/#': 2, '+/+/c': 0 }
]

/** What a subscriber receives of these published messages: one copy each, at min(QoS, highest matching grant). */
function expectedFor (subscriptions: Record<string, Qos>, published: Array<{ topic: string, payload: string, qos: Qos }>): string[] {
  const out: string[] = []
  for (const m of published) {
    let granted = -1
    for (const [filter, qos] of Object.entries(subscriptions)) if (topicMatches(filter.split('/'), m.topic)) granted = Math.max(granted, qos)
    if (granted >= 0) out.push(`${m.topic} ${m.payload} q${Math.min(granted, m.qos)}`)
  }
  return out.sort()
}

async function subscribed (port: number, subscriptions: Record<string, Qos>): Promise<{ client: MqttClient, got: Latch<string> }> {
  const client = await connect(port)
  const got = new Latch<string>()
  client.on('message', (topic, payload, packet) => got.push(`${topic} ${payload.toString()} q${packet.qos}`))
  for (const [topic, qos] of Object.entries(subscriptions)) await client.subscribeAsync(topic, { qos })
  return { client, got }
}

describe('differential: offline prediction = what subscribers of signalbox run receive', function () {
  this.timeout(120_000)

  for (const seed of [11, 23, 37, 41]) {
    it(`seed ${seed}: every subscriber gets exactly the predicted messages, at the predicted QoS`, async () => {
      const next = random(seed)
      const dir = tempDir()
      const file = join(dir, 'rules.yaml')
      const text = ruleSet(next)
      writeFileSync(file, text)
      const loaded = loadRuleSet([file], { sinkSpecs: SINK_SPECS })
      assert.ok(loaded.ok, loaded.ok ? '' : JSON.stringify(loaded.problems) + '\n' + text)
      const runner = new OfflineRunner(loaded.ruleSet)
      const stream = inputs(next, 60)
      // The prediction: each input and every republish it causes, as the broker will see them.
      const published: Array<{ topic: string, payload: string, qos: Qos }> = []
      for (const m of stream) {
        published.push(m)
        for (const o of runner.run({ topic: m.topic, payload: Buffer.from(m.payload), qos: m.qos, retain: false, clientId: 'diff' })) {
          if (o.kind === 'mqtt') published.push({ topic: o.address, payload: o.payload.toString(), qos: o.qos })
        }
      }
      const { port } = await startRun([file])
      const subs = await Promise.all(SUBSCRIBERS.map(async (s) => await subscribed(port, s)))
      const expected = SUBSCRIBERS.map((s) => expectedFor(s, published))
      // The generator must exercise the cases, or the test proves little.
      assert.ok(published.length > stream.length + 20, `only ${published.length - stream.length} derived messages\n${text}`)
      const pub = await connect(port)
      for (const m of stream) await pub.publishAsync(m.topic, m.payload, { qos: m.qos })
      for (let i = 0; i < subs.length; i++) {
        await subs[i].got.wait(expected[i].length, 15_000).catch(() => undefined)
      }
      await new Promise((resolve) => setTimeout(resolve, 300)) // anything extra arrives now
      for (let i = 0; i < subs.length; i++) {
        assert.deepEqual([...subs[i].got.items].sort(), expected[i], `subscriber ${JSON.stringify(SUBSCRIBERS[i])}, seed ${seed}\n${text}`)
      }
    })
  }
})
