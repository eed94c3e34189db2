// Delivery on the embedded broker: every derived message reaches every matching subscription, at
// the QoS MQTT asks for (min of published and granted, the highest granted when subscriptions
// overlap), whatever mix of QoS neighbouring messages have. Real broker, real clients.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { connect as tcpConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import mqttPacket from 'mqtt-packet'
import type { MqttClient } from 'mqtt'
import { connect, type Received } from '../helpers/mqtt.js'
import { mosquittoPub, mosquittoSub, startRun } from '../helpers/cli.js'
import { startSignalbox, tempDir } from '../helpers/signalbox.js'
import { Latch, until } from '../helpers/latch.js'
import { spawnTracked, type Spawned } from '../helpers/process.js'
import { onTeardown } from '../helpers/teardown.js'

const MIXED = `version: 1
rules:
  - name: a
    from: in/x
    to:
      - mqtt: out/a
        qos: 1
      - mqtt: out/b
        qos: 0
`

/** A client subscribed to `filters` (each at its own QoS, one SUBSCRIBE each, in order) collecting what arrives. */
async function subscriber (port: number, filters: Record<string, 0 | 1 | 2>): Promise<{ client: MqttClient, got: Latch<Received> }> {
  const client = await connect(port)
  const got = new Latch<Received>()
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), bytes: payload, retain: packet.retain, qos: packet.qos }))
  // One SUBSCRIBE each, in order, so the broker holds them in the order given.
  for (const [topic, qos] of Object.entries(filters)) {
    const [granted] = await client.subscribeAsync(topic, { qos })
    assert.equal(granted.qos, qos)
  }
  return { client, got }
}

describe('delivery: derived messages of mixed QoS', function () {
  this.timeout(30_000)

  // Failed before the fix: aedes numbered a packet when it was made and dropped, per client, any
  // packet numbered lower than the last it delivered; a QoS 0 packet skips the QoS 1 steps and
  // overtook the QoS 1 one made before it, which the client then took for a duplicate.
  it('a QoS 1 and a QoS 0 output of one message both arrive (mosquitto_sub -q 2)', async () => {
    const file = join(tempDir(), 'mixed.yaml')
    writeFileSync(file, MIXED)
    const { port } = await startRun([file])
    const sub = await mosquittoSub(port, ['out/#'], ['-q', '2'])
    for (let i = 0; i < 5; i++) mosquittoPub(port, 'in/x', `m${i}`)
    const lines = await sub.wait(10)
    assert.equal(lines.filter((l) => l.startsWith('out/a ')).length, 5, lines.join('\n'))
    assert.equal(lines.filter((l) => l.startsWith('out/b ')).length, 5, lines.join('\n'))
  })

  it('two rules with outputs of different QoS on one message: every copy arrives, on overlapping filters once each', async () => {
    const sb = await startSignalbox(`version: 1
rules:
  - name: alert
    from: sensors/+room/temperature
    to: [{ mqtt: "alerts/{room}/hot", qos: 2 }]
  - name: log
    from: sensors/+room/temperature
    to: [{ mqtt: "log/{room}/temperature" }]
`)
    const { got } = await subscriber(sb.port, { 'alerts/#': 2, 'log/#': 0, '+/kitchen/#': 1 })
    const pub = await connect(sb.port)
    const n = 200
    for (let i = 0; i < n; i++) await pub.publishAsync('sensors/kitchen/temperature', JSON.stringify({ i }), { qos: (i % 3) as 0 | 1 | 2 })
    await got.wait(2 * n, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 200)) // a duplicate would arrive now
    const alerts = got.items.filter((m) => m.topic === 'alerts/kitchen/hot')
    const logs = got.items.filter((m) => m.topic === 'log/kitchen/temperature')
    assert.equal(alerts.length, n)
    assert.equal(logs.length, n)
    // The alert output is QoS 2 and both matching subscriptions grant at least 1: the higher wins.
    assert.deepEqual([...new Set(alerts.map((m) => m.qos))], [2])
    // The log output keeps the input's QoS (i % 3); 'log/#' grants 0 and '+/kitchen/#' 1: min(i % 3, 1).
    for (const m of logs) assert.equal(m.qos, Math.min((JSON.parse(m.payload) as { i: number }).i % 3, 1), m.payload)
    assert.deepEqual(logs.map((m) => (JSON.parse(m.payload) as { i: number }).i).sort((a, b) => a - b), [...Array(n).keys()])
  })
})

describe('delivery: QoS downgrade (MQTT-3.8.4-6, MQTT-3.3.5-1)', function () {
  this.timeout(30_000)

  it('a QoS 2 publish reaches a wildcard QoS 1 subscription at QoS 1, an exact QoS 0 one at 0', async () => {
    const sb = await startSignalbox('version: 1\nrules: []\n')
    const wild = await subscriber(sb.port, { 'w/#': 1 })
    const exact = await subscriber(sb.port, { 'w/x': 0 })
    const plus = await subscriber(sb.port, { '+/x': 2 })
    const pub = await connect(sb.port)
    await pub.publishAsync('w/x', 'q2', { qos: 2 })
    await pub.publishAsync('w/x', 'q1', { qos: 1 })
    await Promise.all([wild.got.wait(2), exact.got.wait(2), plus.got.wait(2)])
    assert.deepEqual(wild.got.items.map((m) => m.qos), [1, 1])
    assert.deepEqual(exact.got.items.map((m) => m.qos), [0, 0])
    assert.deepEqual(plus.got.items.map((m) => m.qos), [2, 1])
  })

  it('overlapping subscriptions of one client: delivered once, at the highest QoS granted', async () => {
    const sb = await startSignalbox('version: 1\nrules: []\n')
    // Subscribed in both orders, so whichever subscription the broker tries first, the answer is the same.
    const lowFirst = await subscriber(sb.port, { 'o/x': 0, 'o/#': 2 })
    const highFirst = await subscriber(sb.port, { 'o/#': 2, 'o/x': 0 })
    const capped = await subscriber(sb.port, { 'o/+': 1, '#': 0 })
    const pub = await connect(sb.port)
    await pub.publishAsync('o/x', 'q2', { qos: 2 })
    await pub.publishAsync('o/x', 'q0', { qos: 0 })
    // A probe after them: once it is in, a second copy of either would have arrived before it.
    await pub.publishAsync('o/x', 'probe', { qos: 2 })
    await Promise.all([lowFirst.got.wait(3), highFirst.got.wait(3), capped.got.wait(3)])
    assert.deepEqual(lowFirst.got.items.map((m) => [m.payload, m.qos]), [['q2', 2], ['q0', 0], ['probe', 2]])
    assert.deepEqual(highFirst.got.items.map((m) => [m.payload, m.qos]), [['q2', 2], ['q0', 0], ['probe', 2]])
    assert.deepEqual(capped.got.items.map((m) => [m.payload, m.qos]), [['q2', 1], ['q0', 0], ['probe', 1]])
  })
})

describe('delivery: reserved topics', function () {
  this.timeout(30_000)

  // Failed before: a device publishing to dev/$SYS made the engine publish $SYS/y, which it could not do itself.
  it('a template starting with a capture never renders a $ topic: TOPIC_REFUSED, dead-lettered, nothing on $SYS', async () => {
    const sb = await startSignalbox('version: 1\nrules:\n  - name: relay\n    from: dev/+room\n    to: [{ mqtt: "{room}/y" }]\n')
    const { got } = await subscriber(sb.port, { '$SYS/#': 1, '$signalbox/#': 1, '+/y': 1 })
    const pub = await connect(sb.port)
    await pub.publishAsync('dev/$SYS', '{}', { qos: 1 })
    await pub.publishAsync('dev/$signalbox', '{}', { qos: 1 })
    await pub.publishAsync('dev/kitchen', '{}', { qos: 1 })
    // A probe through the same rule after them: once it is in, anything the others made is too.
    await pub.publishAsync('dev/probe', '{}', { qos: 1 })
    await until(() => got.items.some((m) => m.topic === 'probe/y'), 5000, 'the probe')
    const seen = got.items.filter((m) => !m.topic.startsWith('$SYS/') || m.topic === '$SYS/y')
    assert.deepEqual(seen.map((m) => m.topic).sort(), ['$signalbox/dead-letter/relay', '$signalbox/dead-letter/relay', 'kitchen/y', 'probe/y'])
    for (const m of seen.filter((m) => m.topic.startsWith('$signalbox/'))) assert.equal((JSON.parse(m.payload) as { code: string }).code, 'TOPIC_REFUSED')
  })
})

/** A raw client that subscribes to `#` at QoS 1 and then stops reading: its socket buffers fill. */
async function frozenSubscriber (port: number, clientId: string): Promise<Socket> {
  const socket = tcpConnect(port, '127.0.0.1')
  onTeardown(() => { socket.destroy() })
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const parser = mqttPacket.parser()
  const subscribed = new Promise<void>((resolve) => parser.on('packet', (p: { cmd: string }) => { if (p.cmd === 'suback') resolve() }))
  const feed = (chunk: Buffer): void => { parser.parse(chunk) }
  socket.on('data', feed)
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 }))
  socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 1 }] }))
  await subscribed
  socket.off('data', feed)
  socket.pause()
  return socket
}

/** Reads what a frozen subscriber was sent, from now on: the publishes' topics. */
function drain (socket: Socket): string[] {
  const topics: string[] = []
  const parser = mqttPacket.parser()
  parser.on('packet', (p: { cmd: string, topic?: string }) => { if (p.cmd === 'publish') topics.push(p.topic!) })
  socket.on('data', (chunk: Buffer) => { parser.parse(chunk) })
  socket.resume()
  return topics
}

const RELAY = 'version: 1\nrules:\n  - name: relay\n    from: in/+n\n    to: [{ mqtt: "out/{n}", qos: 1 }]\n'

/** Publishes n messages of `size` bytes at QoS 1, 100 in flight at a time; resolves when all are acknowledged. */
async function flood (client: MqttClient, n: number, size: number): Promise<void> {
  const payload = Buffer.alloc(size, 0x61)
  for (let i = 0; i < n; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, n - i) }, async (_, j) => await client.publishAsync(`in/${i + j}`, payload, { qos: 1 })))
  }
}

describe('delivery: slow consumers', function () {
  this.timeout(60_000)

  // Failed before: after aedes' 100 concurrent deliveries waited on the frozen subscriber's
  // socket, every other subscriber and the publisher waited too, until the drain timeout.
  it('subscribers that stop reading delay no one; their drops are counted, and what they were sent plus their drops is everything', async () => {
    const sb = await startSignalbox(RELAY, { limits: { clientDrainTimeoutMs: 120_000, maxQueuedMessages: 50, maxQueuedBytes: 256 * 1024 } })
    const frozen = await Promise.all([1, 2, 3].map(async (i) => await frozenSubscriber(sb.port, `frozen-${i}`)))
    const { got } = await subscriber(sb.port, { 'out/#': 1 })
    const pub = await connect(sb.port)
    // 2 x 3,000 copies of 16 KiB for each frozen subscriber: more than loopback's socket buffers
    // (which grow to tens of MB) hold, so its backlog bound is reached.
    const n = 3000
    await flood(pub, n, 16 * 1024)
    await got.wait(n, 30_000)
    assert.equal(new Set(got.items.map((m) => m.topic)).size, n)
    // The frozen ones are still connected (the drain timeout is far off) and were dropped copies.
    for (let i = 1; i <= 3; i++) assert.ok(sb.broker.clients().some((c) => c.id === `frozen-${i}`), `frozen-${i} is connected`)
    const drops = [1, 2, 3].map((i) => sb.broker.droppedByClient.get(`frozen-${i}`) ?? 0)
    for (const d of drops) assert.ok(d > 0, `drops ${drops.join(', ')}`)
    assert.equal(sb.broker.stats.deliveriesDropped, drops.reduce((a, b) => a + b, 0))
    // Each was matched 2n times (in/ and out/): what reaches it once it reads, plus its drops.
    const seen = frozen.map(drain)
    for (let i = 0; i < 3; i++) {
      await until(() => seen[i].filter((t) => !t.startsWith('$')).length + drops[i] === 2 * n, 20_000, `frozen-${i + 1}: ${seen[i].length} arrived + ${drops[i]} dropped = ${2 * n}`)
      const topics = seen[i].filter((t) => !t.startsWith('$'))
      assert.equal(new Set(topics).size, topics.length, 'no copy twice')
    }
  })

  it('a subscriber that does not drain within client_drain_timeout_ms is disconnected and counted; the others get everything', async () => {
    const sb = await startSignalbox(RELAY, { limits: { clientDrainTimeoutMs: 500, maxQueuedMessages: 50, maxQueuedBytes: 256 * 1024 } })
    await frozenSubscriber(sb.port, 'frozen')
    const { got } = await subscriber(sb.port, { 'out/#': 1 })
    const pub = await connect(sb.port)
    await flood(pub, 2000, 4096)
    await got.wait(2000, 30_000)
    await until(() => sb.broker.access.counters.drainTimeouts === 1, 10_000, 'the frozen subscriber counted for not draining')
    // Counted when the broker closes it; gone from the client list once aedes has finished closing.
    await until(() => !sb.broker.clients().some((c) => c.id === 'frozen'), 5000, 'the frozen subscriber disconnected')
    assert.equal(sb.broker.access.counters.drainTimeouts, 1)
  })
})

/** A child process that publishes n QoS 0 messages to in/<i> as fast as it can, then exits. */
function streamer (port: number, n: number): Spawned {
  const script = `const mqtt = require('mqtt')
const c = mqtt.connect({ host: '127.0.0.1', port: ${port}, reconnectPeriod: 0 })
c.on('connect', async () => {
  for (let i = 0; i < ${n}; i++) { c.publish('in/' + i, '{"i":' + i + '}', { qos: 0 }); if (i % 500 === 0) await new Promise((r) => setImmediate(r)) }
  c.end(false, () => process.exit(0))
})`
  return spawnTracked(process.execPath, ['-e', script])
}

describe('delivery: a backlog after a stall', function () {
  this.timeout(60_000)

  // Failed before: mqemitter released the queued publishes one inside the other (each that no
  // subscriber waited for finished at once) until 'Maximum call stack size exceeded' killed the process.
  it('the event loop held for 3 s under a stream: the backlog drains, the process lives, every message is accounted for', async () => {
    const sb = await startSignalbox(RELAY)
    const { got } = await subscriber(sb.port, { 'out/#': 0 })
    const n = 40_000
    const child = streamer(sb.port, n)
    await got.wait(1, 10_000)
    const end = Date.now() + 3000
    while (Date.now() < end) { /* hold the loop, as a long reload or GC pause does */ }
    assert.equal(await child.exited, 0, child.stderr())
    await got.wait(n, 30_000)
    assert.equal(new Set(got.items.map((m) => m.topic)).size, n)
    // A republish is counted when the broker has handed it to every subscriber: a moment after it arrived.
    await until(() => sb.engine.ruleCountersFor('relay')!.published === n, 10_000, `${n} republishes counted`)
    assert.equal(sb.engine.ruleCountersFor('relay')!.dropped, 0)
  })
})
