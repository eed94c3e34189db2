// The engine on a real embedded aedes broker, driven by real mqtt.js clients.
// Names: startSignalbox (engine + broker on an ephemeral port), subscribe (a collecting mqtt.js client),
// connect (a publishing mqtt.js client), until (poll a counter).
import assert from 'node:assert/strict'
import { until } from '../helpers/latch.js'
import { connect, subscribe } from '../helpers/mqtt.js'
import { startSignalbox } from '../helpers/signalbox.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'

const HOT_ROOM = `
version: 1
rules:
  - name: hot-room
    from: sensors/+room/temperature
    where: { ">": [{ var: payload.celsius }, 30] }
    set:
      room: { var: params.room }
      fahrenheit: { "+": [{ "*": [{ var: payload.celsius }, 1.8] }, 32] }
    to:
      - mqtt: alerts/{room}/hot
        qos: 1
`

describe('engine', () => {
  it('filters, transforms and republishes to a derived topic', async () => {
    const sb = await startSignalbox(HOT_ROOM)
    const alerts = await subscribe(sb.port, ['alerts/#'])
    const pub = await connect(sb.port)
    await pub.publishAsync('sensors/kitchen/temperature', '{"celsius":20}')
    await pub.publishAsync('sensors/kitchen/temperature', '{"celsius":35}')
    const [msg] = await alerts.wait(1)
    assert.equal(msg.topic, 'alerts/kitchen/hot')
    assert.deepEqual(JSON.parse(msg.payload), { room: 'kitchen', fahrenheit: 95 })
    assert.equal(msg.qos, 1)
    await until(() => sb.engine.ruleCountersFor('hot-room')!.published === 1)
    assert.deepEqual(sb.engine.ruleCountersFor('hot-room'), { matched: 2, passed: 1, filtered: 1, errors: 0, published: 1, dropped: 0 })
  })

  it('passes the payload through unchanged without set, and keeps retain when asked', async () => {
    const sb = await startSignalbox(`
version: 1
rules:
  - name: copy
    from: raw/#path
    to: [{ mqtt: "copy/{path}", retain: true }]
`)
    const pub = await connect(sb.port)
    const bytes = Buffer.from([0xff, 0x00, 0x41, 0xfe])
    await pub.publishAsync('raw/a/b/c', bytes, { qos: 1 })
    await until(() => sb.engine.ruleCountersFor('copy')!.published === 1)
    // Subscribed after the fact: only a retained message arrives.
    const late = await subscribe(sb.port, ['copy/#'])
    const [msg] = await late.wait(1)
    assert.equal(msg.topic, 'copy/a/b/c')
    assert.equal(msg.retain, true)
    assert.deepEqual(msg.bytes, bytes)
    assert.equal(sb.engine.ruleCountersFor('copy')!.errors, 0)
  })

  it('runs every matching rule (fan-out)', async () => {
    const sb = await startSignalbox(`
version: 1
rules:
  - name: by-room
    from: sensors/+room/+kind
    to: [{ mqtt: "rooms/{room}/{kind}" }]
  - name: by-kind
    from: sensors/#
    set: { topic: { var: topic } }
    to: [{ mqtt: "kinds/all" }]
  - name: unrelated
    from: other/+
    to: [{ mqtt: "never/{meta.clientId}" }]
`)
    const out = await subscribe(sb.port, ['rooms/#', 'kinds/#', 'never/#'])
    const pub = await connect(sb.port)
    await pub.publishAsync('sensors/hall/humidity', '{"rh":40}')
    const got = await out.wait(2)
    assert.deepEqual(got.map((m) => m.topic).sort(), ['kinds/all', 'rooms/hall/humidity'])
    assert.deepEqual(JSON.parse(got.find((m) => m.topic === 'kinds/all')!.payload), { topic: 'sensors/hall/humidity' })
    assert.equal(sb.engine.ruleCountersFor('unrelated')!.matched, 0)
  })

  it('routes republished messages again, so rules chain', async () => {
    const sb = await startSignalbox(`
version: 1
rules:
  - name: normalise
    from: raw/+device
    set: { c: { var: payload.value }, device: { var: params.device } }
    to: [{ mqtt: "clean/{device}" }]
  - name: alert
    from: clean/+device
    where: { ">=": [{ var: payload.c }, 100] }
    set: { alert: { cat: ["device ", { var: payload.device }, " too hot"] }, hops: { var: meta.hops } }
    to: [{ mqtt: "alerts/{device}" }]
`)
    const alerts = await subscribe(sb.port, ['alerts/#'])
    const pub = await connect(sb.port)
    await pub.publishAsync('raw/boiler', '{"value":120}')
    const [msg] = await alerts.wait(1)
    assert.equal(msg.topic, 'alerts/boiler')
    assert.deepEqual(JSON.parse(msg.payload), { alert: 'device boiler too hot', hops: 1 })
  })

  it('stops a republish loop at max_hops and counts the drop', async () => {
    const sb = await startSignalbox(`
version: 1
rules:
  - name: loop
    from: loop/#rest
    to: [{ mqtt: "loop/{rest}" }]
`, { maxHops: 5 })
    const seen = await subscribe(sb.port, ['loop/#'])
    const pub = await connect(sb.port)
    await pub.publishAsync('loop/x', 'ping')
    // The client's message, then exactly 5 republishes.
    await seen.wait(6)
    await until(() => sb.engine.counters.hopLimit === 1)
    const counters = sb.engine.ruleCountersFor('loop')!
    // A republish counts when aedes calls back, just after it has routed the message on.
    await until(() => counters.published === 5, 5000, 'five republishes counted')
    assert.equal(counters.dropped, 1)
    assert.equal(counters.matched, 6)
    assert.equal(seen.items.length, 6)
  })

  it('dead-letters a garbage payload and keeps handling the next good message', async () => {
    const sb = await startSignalbox(HOT_ROOM)
    const out = await subscribe(sb.port, ['alerts/#', '$signalbox/dead-letter/#'])
    const pub = await connect(sb.port)
    await pub.publishAsync('sensors/kitchen/temperature', 'not json {')
    await pub.publishAsync('sensors/kitchen/temperature', '{"celsius":40}')
    const got = await out.wait(2)
    const letter = got.find((m) => m.topic === '$signalbox/dead-letter/hot-room')
    assert.ok(letter, 'dead letter published')
    const body = JSON.parse(letter.payload)
    assert.equal(body.code, 'PAYLOAD_NOT_JSON')
    assert.equal(body.rule, 'hot-room')
    assert.equal(body.payload, 'not json {')
    assert.equal(body.topic, 'sensors/kitchen/temperature')
    assert.match(body.source, /rules\.yaml:4$/)
    assert.ok(got.some((m) => m.topic === 'alerts/kitchen/hot'))
    assert.equal(sb.engine.ruleCountersFor('hot-room')!.errors, 1)
  })

  it('refuses a rendered topic value that holds a wildcard or a slash, and counts it', async () => {
    const sb = await startSignalbox(`
version: 1
rules:
  - name: by-site
    from: telemetry/+
    to: [{ mqtt: "sites/{payload.site}/data" }]
  - name: quiet
    from: telemetry/+
    on_error: drop
    to: [{ mqtt: "quiet/{payload.site}" }]
`)
    const out = await subscribe(sb.port, ['sites/#', 'quiet/#', '$signalbox/dead-letter/#'])
    const pub = await connect(sb.port)
    for (const site of ['a/b', '#', '+', '']) await pub.publishAsync('telemetry/x', JSON.stringify({ site }))
    await pub.publishAsync('telemetry/x', JSON.stringify({ site: 'north' }))
    const got = await out.wait(6)
    const letters = got.filter((m) => m.topic.startsWith('$signalbox/'))
    assert.equal(letters.length, 4)
    for (const l of letters) assert.equal(JSON.parse(l.payload).code, 'TOPIC_REFUSED')
    assert.deepEqual(got.filter((m) => !m.topic.startsWith('$')).map((m) => m.topic).sort(), ['quiet/north', 'sites/north/data'])
    await until(() => sb.engine.ruleCountersFor('quiet')!.errors === 4)
    assert.equal(sb.engine.ruleCountersFor('by-site')!.dropped, 4)
    // Counted when aedes calls back, which may come after a fast subscriber already has the letter.
    await until(() => sb.engine.counters.deadLettered === 4, 5000, 'dead letters counted')
  })

  it('counts an expression that throws as an error, never crashing', async () => {
    const sb = await startSignalbox(`
version: 1
rules:
  - name: throws
    from: t/+
    set: { x: { "*": [] } }
    to: [{ mqtt: "out/x" }]
  - name: fine
    from: t/+
    to: [{ mqtt: "out/fine" }]
`)
    const out = await subscribe(sb.port, ['out/#', '$signalbox/dead-letter/#'])
    const pub = await connect(sb.port)
    await pub.publishAsync('t/1', '{}')
    const got = await out.wait(2)
    assert.deepEqual(got.map((m) => m.topic).sort(), ['$signalbox/dead-letter/throws', 'out/fine'])
    assert.equal(JSON.parse(got.find((m) => m.topic.startsWith('$'))!.payload).code, 'EXPRESSION_ERROR')
  })

  it('does not match $ topics with a leading wildcard [MQTT-4.7.2-1]', async () => {
    const sb = await startSignalbox(`
version: 1
rules:
  - name: everything
    from: "#"
    on_error: drop
    to: [{ mqtt: "seen/{meta.qos}" }]
`, { maxHops: 1 })
    const pub = await connect(sb.port)
    await pub.publishAsync('$app/status', 'x')
    await pub.publishAsync('plain', 'x')
    await until(() => sb.engine.ruleCountersFor('everything')!.published === 1)
    // 'plain' matched; its republish 'seen/0' matched too (and hit max_hops); '$app/status' never did.
    assert.equal(sb.engine.ruleCountersFor('everything')!.matched, 2)
  })

  it('on close, hands every publish it already acknowledged to the engine, and refuses new ones', async () => {
    const sb = await startSignalbox(HOT_ROOM)
    const pub = await connect(sb.port)
    // aedes sends PUBACK before it runs its publish pipeline: a close right after the acks must still deliver them.
    await Promise.all(Array.from({ length: 300 }, async (_, i) => await pub.publishAsync(`sensors/r${i}/temperature`, '{"celsius":40}', { qos: 1 })))
    await sb.broker.close()
    assert.equal(sb.engine.ruleCountersFor('hot-room')!.matched, 300)
  })

  it('swaps rule sets with one assignment', async () => {
    const sb = await startSignalbox(HOT_ROOM)
    const { loadRuleSet } = await import('../../rules/compile/ruleset.js')
    const other = loadRuleSet(['fixtures/rules/home.yaml'], { sinkSpecs: SINK_SPECS })
    assert.ok(other.ok)
    sb.engine.swap(other.ruleSet)
    assert.deepEqual(sb.engine.ruleSet.rules.map((r) => r.name), ['hot-room', 'low-battery', 'door-log'])
  })
})
