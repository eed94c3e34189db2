// Remote MQTT sink against a real mosquitto: the shared contract, republishing from rules, and a
// broker stopped and started again mid-stream.
import assert from 'node:assert/strict'
import mqtt, { type MqttClient } from 'mqtt'
import { pino } from 'pino'
import { mqttSinkType } from '../../../adapters/sinks/mqtt.js'
import type { Sink } from '../../../adapters/sink.js'
import { until } from '../../helpers/latch.js'
import { connect } from '../../helpers/mqtt.js'
import { startMosquitto, type TestServer } from '../../helpers/servers.js'
import { assertAccounted, delivery, describeSinkContract } from '../../helpers/sink-contract.js'
import { startSignalbox } from '../../helpers/signalbox.js'
import { onTeardown } from '../../helpers/teardown.js'

const silent = pino({ level: 'silent' })
let clients = 0

function mqttSink (options: Record<string, unknown>): Sink {
  const sink = mqttSinkType.create({ name: 'mqtt-test', type: 'mqtt', options, baseDir: '/', declaredAt: 'test', implicit: false }, { logger: silent })
  onTeardown(async () => await sink.close(0))
  return sink
}

interface Collected { topic: string, payload: string, retain: boolean }

/**
 * A subscriber with a persistent session (clean: false, QoS 1), so mosquitto keeps what arrives
 * for it while it reconnects after a restart.
 */
async function persistentSubscriber (server: TestServer, filter: string): Promise<{ client: MqttClient, got: Collected[] }> {
  const client = await mqtt.connectAsync(server.url, { clientId: `checker-${process.pid}-${++clients}`, clean: false, reconnectPeriod: 50 })
  onTeardown(async () => await client.endAsync(true))
  const got: Collected[] = []
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain }))
  await client.subscribeAsync(filter, { qos: 1 })
  return { client, got }
}

describeSinkContract('mqtt (remote)', async () => {
  const server = await startMosquitto()
  const { got } = await persistentSubscriber(server, 'contract/#')
  return {
    address: 'contract/out',
    create: (queueSize) => mqttSink({ url: server.url, queue_size: queueSize }),
    received: async (count, ms = 10_000) => {
      await until(() => got.length >= count, ms, `${count} messages at the subscriber (have ${got.length})`)
      return got.map((m) => m.payload)
    },
    down: async () => await server.stop(),
    up: async () => await server.start()
  }
})

describe('mqtt sink (remote broker)', function () {
  this.timeout(60_000)

  it('republishes derived messages to another broker with the rendered topic, QoS and retain', async () => {
    const server = await startMosquitto()
    const { got } = await persistentSubscriber(server, 'site/#')
    const sb = await startSignalbox(`version: 1
sinks:
  upstream: { type: mqtt, url: "${server.url}", qos: 1 }
rules:
  - name: forward
    from: sensors/+room/temperature
    set:
      room: { var: params.room }
      celsius: { var: payload.celsius }
    to:
      - sink: upstream
        topic: "site/{room}/temperature"
        retain: true
`)
    const pub = await connect(sb.port)
    pub.publish('sensors/kitchen/temperature', '{"celsius": 21.5}')
    await until(() => got.length === 1, 5000, 'one message upstream')
    assert.deepEqual(got[0], { topic: 'site/kitchen/temperature', payload: '{"room":"kitchen","celsius":21.5}', retain: false })
    // A new subscriber gets the retained copy.
    const late = await mqtt.connectAsync(server.url, { reconnectPeriod: 0 })
    onTeardown(async () => await late.endAsync(true))
    const retained = new Promise<string>((resolve) => late.on('message', (_t, payload, packet) => { if (packet.retain) resolve(payload.toString()) }))
    await late.subscribeAsync('site/#', { qos: 1 })
    assert.equal(await retained, '{"room":"kitchen","celsius":21.5}')
    const sink = sb.sinks.get('upstream')!
    assert.equal(await sink.flush(5000), true)
    assert.equal(sink.counters().delivered, 1)
    assertAccounted(sink)
  })

  it('keeps going when the broker stops and starts mid-stream: nothing missing but the counted overflow', async () => {
    const server = await startMosquitto()
    const { got } = await persistentSubscriber(server, 'flow/#')
    const sink = mqttSink({ url: server.url, queue_size: 200, qos: 1 })
    await sink.start()
    await until(() => sink.health().state === 'up', 10_000, 'sink up')
    const send = (from: number, to: number): void => { for (let i = from; i <= to; i++) sink.send({ ...delivery('flow/out', i), qos: 1 }) }

    send(1, 200)
    await until(() => got.length >= 200, 10_000, 'first 200 upstream')
    await server.stop()
    send(201, 500)
    assert.equal(sink.counters().dropped.queue_full, 100)
    await server.start()
    assert.equal(await sink.flush(30_000), true)
    send(501, 600)
    assert.equal(await sink.flush(10_000), true)
    const distinct = (): Set<number> => new Set(got.map((m) => (JSON.parse(m.payload) as { seq: number }).seq))
    await until(() => distinct().size >= 500, 20_000, '500 distinct messages upstream')
    const seqs = distinct()
    for (let i = 1; i <= 600; i++) {
      if (i > 400 && i <= 500) assert.ok(!seqs.has(i), `${i} was counted as dropped but arrived`)
      else assert.ok(seqs.has(i), `message ${i} is missing`)
    }
    const c = sink.counters()
    assert.equal(c.delivered, 500)
    assert.equal(c.dropped.queue_full, 100)
    assertAccounted(sink)
  })
})
