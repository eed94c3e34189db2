// NATS sink against a real nats-server: the shared contract (core NATS and JetStream), headers on
// derived messages, a server killed mid-stream, and JetStream landing in a stream.
import assert from 'node:assert/strict'
import { connect as natsConnect, StorageType, type JetStreamManager, type Msg, type NatsConnection } from 'nats'
import { pino } from 'pino'
import { natsSinkType } from '../../../adapters/sinks/nats.js'
import type { Sink } from '../../../adapters/sink.js'
import { Latch, until } from '../../helpers/latch.js'
import { connect, subscribe } from '../../helpers/mqtt.js'
import { startNatsServer, type TestServer } from '../../helpers/servers.js'
import { assertAccounted, delivery, describeSinkContract } from '../../helpers/sink-contract.js'
import { startSignalbox } from '../../helpers/signalbox.js'
import { onTeardown } from '../../helpers/teardown.js'

const silent = pino({ level: 'silent' })

function natsSink (options: Record<string, unknown>): Sink {
  const sink = natsSinkType.create({ name: 'nats-test', type: 'nats', options, baseDir: '/', declaredAt: 'test', implicit: false }, { logger: silent })
  onTeardown(async () => await sink.close(0))
  return sink
}

/** A client of the test's own, reconnecting quickly, closed at teardown. */
async function client (server: TestServer): Promise<NatsConnection> {
  const nc = await natsConnect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 20 })
  onTeardown(async () => await nc.close())
  return nc
}

async function createStream (nc: NatsConnection, name: string, subjects: string[]): Promise<JetStreamManager> {
  const jsm = await nc.jetstreamManager()
  await jsm.streams.add({ name, subjects, storage: StorageType.File })
  return jsm
}

/** The stream's messages once it holds at least `count` (retrying while the server restarts). */
async function readStream (jsm: JetStreamManager, stream: string, count: number, ms = 20_000): Promise<Array<{ subject: string, payload: string, headers: Record<string, string> }>> {
  let last = { first: 0, last: 0 }
  const deadline = Date.now() + ms
  while (last.last === 0 || last.last - last.first + 1 < count) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${count} messages in stream ${stream}; have ${JSON.stringify(last)}`)
    try {
      const info = await jsm.streams.info(stream)
      last = { first: info.state.first_seq, last: info.state.last_seq }
    } catch {
      // The server is restarting: ask again.
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const out = []
  for (let seq = last.first; seq <= last.last; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq })
    const headers: Record<string, string> = {}
    for (const [k, v] of m.header ?? []) headers[k] = v.join(',')
    out.push({ subject: m.subject, payload: Buffer.from(m.data).toString(), headers })
  }
  return out
}

for (const jetstream of [false, true]) {
  describeSinkContract(jetstream ? 'nats (jetstream)' : 'nats', async () => {
    const server = await startNatsServer()
    const jsm = await createStream(await client(server), 'CONTRACT', ['contract.>'])
    return {
      address: 'contract.out',
      create: (queueSize) => natsSink({ servers: server.url, queue_size: queueSize, jetstream }),
      received: async (count, ms) => (await readStream(jsm, 'CONTRACT', count, ms)).map((m) => m.payload),
      down: async () => await server.stop(),
      up: async () => await server.start()
    }
  })
}

describe('nats sink', function () {
  this.timeout(60_000)

  it('publishes derived messages a NATS subscriber sees, with the topic and rule in headers', async () => {
    const server = await startNatsServer()
    const nc = await client(server)
    const got = new Latch<Msg>()
    nc.subscribe('>', { callback: (_err, msg) => got.push(msg) })
    await nc.flush()
    const sb = await startSignalbox(`version: 1
sinks:
  bus: { type: nats, servers: "${server.url}" }
rules:
  - name: hot-room
    from: sensors/+room/temperature
    where: { ">": [{ var: payload.celsius }, 30] }
    set:
      room: { var: params.room }
      celsius: { var: payload.celsius }
    to:
      - sink: bus
        subject: "alerts.{room}.hot"
      - nats: "shorthand.{room}"
      - sink: bus
`)
    const dead = await subscribe(sb.port, ['$signalbox/dead-letter/#'])
    const pub = await connect(sb.port)
    pub.publish('sensors/kitchen/temperature', '{"celsius": 31}')
    pub.publish('sensors/hall/temperature', '{"celsius": 20}')
    pub.publish('sensors/a.b/temperature', '{"celsius": 40}')
    // 'a.b' is one MQTT level: in a subject it would be two tokens, so all three of its outputs are refused.
    const letters = await dead.wait(3)
    for (const letter of letters) assert.match(JSON.parse(letter.payload).reason as string, /holds '\.'/)
    const msgs = await got.wait(3)
    await nc.flush()
    assert.deepEqual(msgs.map((m) => `${m.subject} ${Buffer.from(m.data).toString()}`).sort(), [
      'alerts.kitchen.hot {"room":"kitchen","celsius":31}',
      'sensors.kitchen.temperature {"room":"kitchen","celsius":31}',
      'shorthand.kitchen {"room":"kitchen","celsius":31}'
    ])
    const first = msgs.find((m) => m.subject === 'alerts.kitchen.hot')!
    assert.equal(first.headers?.get('Signalbox-Topic'), 'sensors/kitchen/temperature')
    assert.equal(first.headers?.get('Signalbox-Rule'), 'hot-room')
  })

  it('survives a server killed mid-stream: the queue is delivered after the restart, the overflow is counted, nothing else is missing', async () => {
    const server = await startNatsServer()
    const live = await client(server)
    const seenLive = new Set<number>()
    live.subscribe('kill.>', { callback: (_err, msg) => seenLive.add((JSON.parse(Buffer.from(msg.data).toString()) as { seq: number }).seq) })
    await live.flush()
    const jsm = await createStream(live, 'KILL', ['kill.>'])
    const sink = natsSink({ servers: server.url, queue_size: 100 })
    await sink.start()
    await until(() => sink.health().state === 'up', 10_000, 'sink up')

    for (let i = 1; i <= 100; i++) sink.send(delivery('kill.out', i))
    await until(() => seenLive.size === 100, 10_000, 'first 100 seen live')
    await server.kill()
    for (let i = 101; i <= 250; i++) sink.send(delivery('kill.out', i))
    assert.equal(sink.counters().dropped.queue_full, 50)
    await server.start()
    assert.equal(await sink.flush(30_000), true)
    for (let i = 251; i <= 300; i++) sink.send(delivery('kill.out', i))
    assert.equal(await sink.flush(10_000), true)

    const stored = new Set((await readStream(jsm, 'KILL', 150)).map((m) => (JSON.parse(m.payload) as { seq: number }).seq))
    const all = new Set([...seenLive, ...stored])
    for (let i = 1; i <= 300; i++) {
      if (i > 200 && i <= 250) assert.ok(!all.has(i), `${i} was counted as dropped but arrived`)
      else assert.ok(all.has(i), `message ${i} is missing`)
    }
    const c = sink.counters()
    assert.equal(c.delivered, 250)
    assert.equal(c.dropped.queue_full, 50)
    assertAccounted(sink)
  })

  it('with jetstream: true, messages land in a stream, acknowledged, with a message id', async () => {
    const server = await startNatsServer()
    const jsm = await createStream(await client(server), 'ALERTS', ['alerts.>'])
    const sb = await startSignalbox(`version: 1
sinks:
  stream: { type: nats, servers: "${server.url}", jetstream: true }
rules:
  - name: to-stream
    from: sensors/+room/temperature
    to:
      - sink: stream
        subject: "alerts.{room}"
`)
    const pub = await connect(sb.port)
    for (let i = 0; i < 50; i++) pub.publish(`sensors/room${i % 5}/temperature`, JSON.stringify({ i }))
    const sink = sb.sinks.get('stream')!
    await until(() => sink.counters().emitted === 50, 10_000, '50 outputs')
    assert.equal(await sink.flush(10_000), true)
    const stored = await readStream(jsm, 'ALERTS', 50)
    assert.equal(stored.length, 50)
    assert.deepEqual(stored.map((m) => (JSON.parse(m.payload) as { i: number }).i).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i))
    assert.equal(stored[0].subject, `alerts.room${(JSON.parse(stored[0].payload) as { i: number }).i % 5}`)
    assert.ok(stored.every((m) => m.headers['Nats-Msg-Id'] !== undefined && m.headers['Signalbox-Rule'] === 'to-stream'))
    assert.equal(new Set(stored.map((m) => m.headers['Nats-Msg-Id'])).size, 50)
    assert.equal(sink.counters().delivered, 50)
    assertAccounted(sink)
  })
})
