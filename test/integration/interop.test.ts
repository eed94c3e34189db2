// Each behaviour the Eclipse Paho MQTT 3.1.1 interoperability client tests check
// (eclipse/paho.mqtt.testing, interoperability/client_test.py), against `signalbox run` with
// fixtures/paho/signalbox.yaml (whose ACL refuses subscriptions to test/nosubscribe, as the suite
// expects), with real clients: mqtt.js, and raw sockets where a client must misbehave. The zero
// length client id case is in hostile.test.ts.
import assert from 'node:assert/strict'
import { connect as tcpConnect, type Socket } from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { startRun } from '../helpers/cli.js'
import { Latch, until } from '../helpers/latch.js'
import { fixturePath } from '../helpers/paths.js'
import { onTeardown } from '../helpers/teardown.js'

interface Got { topic: string, payload: string, qos: number, retain: boolean }

async function client (port: number, options: IClientOptions = {}): Promise<{ c: MqttClient, got: Latch<Got> }> {
  const c = await mqtt.connectAsync({ host: '127.0.0.1', port, reconnectPeriod: 0, connectTimeout: 5000, ...options })
  onTeardown(async () => await c.endAsync(true))
  const got = new Latch<Got>()
  c.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }))
  return { c, got }
}

/** A raw client: CONNECT sent; publishes it is sent are collected, never acknowledged. */
async function raw (port: number, connect: Record<string, unknown>): Promise<{ socket: Socket, packets: Latch<{ cmd: string, topic?: string, dup?: boolean, sessionPresent?: boolean, returnCode?: number }> }> {
  const socket = tcpConnect(port, '127.0.0.1')
  onTeardown(() => { socket.destroy() })
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const parser = mqttPacket.parser()
  const packets = new Latch<{ cmd: string, topic?: string, dup?: boolean }>()
  parser.on('packet', (p: { cmd: string }) => packets.push(p))
  socket.on('data', (chunk: Buffer) => { parser.parse(chunk) })
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, keepalive: 0, clean: true, ...connect } as never))
  await until(() => packets.items.some((p) => p.cmd === 'connack'), 5000, 'CONNACK')
  return { socket, packets }
}

const settle = async (ms = 300): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

describe('interoperability (the Paho MQTT 3.1.1 client tests, each with a real client)', function () {
  this.timeout(30_000)
  let port: number
  beforeEach(async () => { port = (await startRun(['--config', fixturePath('paho/signalbox.yaml')])).port })

  it('retained messages: one per topic at each QoS, delivered on subscribe with the retain flag; an empty one clears it', async () => {
    const a = await client(port)
    await a.c.publishAsync('TopicA/B', 'qos 0', { qos: 0, retain: true })
    await a.c.publishAsync('Topic/C', 'qos 1', { qos: 1, retain: true })
    await a.c.publishAsync('TopicA/C', 'qos 2', { qos: 2, retain: true })
    const b = await client(port)
    await b.c.subscribeAsync('+/+', { qos: 2 })
    const got = await b.got.wait(3)
    assert.deepEqual(got.map((m) => `${m.topic} ${m.payload} q${m.qos} ${m.retain}`).sort(), ['Topic/C qos 1 q1 true', 'TopicA/B qos 0 q0 true', 'TopicA/C qos 2 q2 true'])
    for (const [topic, qos] of [['TopicA/B', 0], ['Topic/C', 1], ['TopicA/C', 2]] as const) await a.c.publishAsync(topic, '', { qos, retain: true })
    await settle()
    const c = await client(port)
    await c.c.subscribeAsync('+/+', { qos: 2 })
    await settle()
    assert.deepEqual(c.got.items, [])
  })

  it('will messages: a client that goes away without DISCONNECT has its will published', async () => {
    const b = await client(port)
    await b.c.subscribeAsync('Topic/C', { qos: 2 })
    const { socket } = await raw(port, { clientId: 'will-a', keepalive: 2, will: { topic: 'Topic/C', payload: Buffer.from('client not disconnected'), qos: 1, retain: false } })
    socket.destroy()
    const [will] = await b.got.wait(1)
    assert.equal(will.payload, 'client not disconnected')
  })

  it('offline message queueing: a persistent session gets its QoS 1 and 2 messages on reconnect, session present', async () => {
    const first = await client(port, { clientId: 'offline-a', clean: false })
    await first.c.subscribeAsync('+/+', { qos: 2 })
    await first.c.endAsync()
    const b = await client(port)
    await b.c.publishAsync('TopicA/B', 'qos 0', { qos: 0 })
    await b.c.publishAsync('Topic/C', 'qos 1', { qos: 1 })
    await b.c.publishAsync('TopicA/C', 'qos 2', { qos: 2 })
    await settle()
    const again = await raw(port, { clientId: 'offline-a', clean: false })
    assert.equal(again.packets.items.find((p) => p.cmd === 'connack')!.sessionPresent, true)
    await until(() => again.packets.items.filter((p) => p.cmd === 'publish').length >= 2, 5000, 'queued messages')
    await settle()
    // QoS 0 messages are not queued for an offline client (the suite allows either).
    assert.deepEqual(again.packets.items.filter((p) => p.cmd === 'publish').map((p) => p.topic).sort(), ['Topic/C', 'TopicA/C'])
  })

  it('overlapping subscriptions: TopicA/# at 2 and TopicA/+ at 1 get one copy at QoS 2', async () => {
    const a = await client(port)
    await a.c.subscribeAsync({ 'TopicA/#': { qos: 2 }, 'TopicA/+': { qos: 1 } })
    await a.c.publishAsync('TopicA/C', 'overlapping topic filters', { qos: 2 })
    await a.got.wait(1)
    await settle()
    assert.deepEqual(a.got.items.map((m) => m.qos), [2])
  })

  it('keepalive: a client silent for 1.5 x its keep-alive is cut off and its will published', async () => {
    const b = await client(port)
    await b.c.subscribeAsync('/TopicA', { qos: 2 })
    // Connected with a 1 s keep-alive, then sends nothing (no PINGREQ).
    await raw(port, { clientId: 'keepalive-a', keepalive: 1, will: { topic: '/TopicA', payload: Buffer.from('keepalive expiry'), qos: 0, retain: false } })
    const [will] = await b.got.wait(1, 10_000)
    assert.equal(will.payload, 'keepalive expiry')
  })

  it('redelivery on reconnect: unacknowledged QoS 1 and 2 messages are sent again, marked DUP, to the persistent session', async () => {
    const first = await raw(port, { clientId: 'redeliver-b', clean: false })
    first.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'TopicA/#', qos: 2 }] }))
    await until(() => first.packets.items.some((p) => p.cmd === 'suback'), 5000, 'SUBACK')
    const pub = await client(port)
    await pub.c.publishAsync('TopicA/B', 'one', { qos: 1 })
    await pub.c.publishAsync('TopicA/C', 'two', { qos: 2 })
    await until(() => first.packets.items.filter((p) => p.cmd === 'publish').length === 2, 5000, 'two publishes, never acknowledged')
    first.socket.destroy()
    await settle()
    const again = await raw(port, { clientId: 'redeliver-b', clean: false })
    await until(() => again.packets.items.filter((p) => p.cmd === 'publish').length === 2, 5000, 'the two sent again')
    assert.deepEqual(again.packets.items.filter((p) => p.cmd === 'publish').map((p) => `${p.topic} dup=${String(p.dup)}`).sort(), ['TopicA/B dup=true', 'TopicA/C dup=true'])
  })

  it('subscribe failure: a subscription the ACL refuses gets return code 0x80', async () => {
    const { socket, packets } = await raw(port, { clientId: 'subfail' })
    socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'test/nosubscribe', qos: 2 }] }))
    await until(() => packets.items.some((p) => p.cmd === 'suback'), 5000, 'SUBACK')
    assert.deepEqual((packets.items.find((p) => p.cmd === 'suback') as unknown as { granted: number[] }).granted, [0x80])
  })

  it('$ topics: a filter starting with a wildcard does not match a topic starting with $', async () => {
    const b = await client(port)
    await b.c.subscribeAsync(['+/+', '#'], { qos: 2 })
    await b.c.publishAsync('$TopicA/B', 'dollar', { qos: 1 })
    await b.c.publishAsync('TopicA/B', 'plain', { qos: 1 })
    await b.got.wait(1)
    await settle()
    assert.deepEqual(b.got.items.map((m) => m.topic), ['TopicA/B'])
  })

  it('unsubscribe: after unsubscribing one of three topics, only the other two arrive', async () => {
    const b = await client(port)
    for (const t of ['TopicA', 'TopicA/B', 'Topic/C']) await b.c.subscribeAsync(t, { qos: 2 })
    await b.c.unsubscribeAsync('TopicA')
    const a = await client(port)
    for (const t of ['TopicA', 'TopicA/B', 'Topic/C']) await a.c.publishAsync(t, '', { qos: 1 })
    await b.got.wait(2)
    await settle()
    assert.deepEqual(b.got.items.map((m) => m.topic).sort(), ['Topic/C', 'TopicA/B'])
  })
})
