// TLS options of the remote MQTT and NATS sinks against real servers using fixtures/tls: a trusted
// (and, for mosquitto, mutual) TLS connection delivers; a missing CA or client certificate keeps the
// sink down with the reason, its messages queued and counted.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import mqtt from 'mqtt'
import { connect as natsConnect, type Msg } from 'nats'
import { pino } from 'pino'
import { mqttSinkType } from '../../../adapters/sinks/mqtt.js'
import { natsSinkType } from '../../../adapters/sinks/nats.js'
import type { Sink, SinkType } from '../../../adapters/sink.js'
import { Latch, until } from '../../helpers/latch.js'
import { startMosquitto, startNatsServer, TLS_FILES } from '../../helpers/servers.js'
import { assertAccounted, delivery } from '../../helpers/sink-contract.js'
import { onTeardown } from '../../helpers/teardown.js'

const silent = pino({ level: 'silent' })

function create (type: SinkType, options: Record<string, unknown>): Sink {
  // Relative TLS paths resolve against the rules file's directory: here, the one holding the test certificates.
  const sink = type.create({ name: `${type.type}-tls`, type: type.type, options, baseDir: TLS_FILES.ca.replace(/\/ca\.pem$/, ''), declaredAt: 'test', implicit: false }, { logger: silent })
  onTeardown(async () => await sink.close(0))
  return sink
}

describe('sinks over TLS', function () {
  this.timeout(30_000)

  it('mqtt: delivers over mutual TLS with ca, cert and key', async () => {
    const server = await startMosquitto({ mutualTls: true })
    const checker = await mqtt.connectAsync(server.url, {
      ca: readFileSync(TLS_FILES.ca), cert: readFileSync(TLS_FILES.clientCert), key: readFileSync(TLS_FILES.clientKey), reconnectPeriod: 0
    })
    onTeardown(async () => await checker.endAsync(true))
    const got = new Latch<string>()
    checker.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`))
    await checker.subscribeAsync('secure/#', { qos: 1 })

    const sink = create(mqttSinkType, { url: server.url, tls: { ca: 'ca.pem', cert: 'client.pem', key: 'client.key' } })
    await sink.start()
    sink.send(delivery('secure/out', 1))
    assert.deepEqual(await got.wait(1), ['secure/out {"seq":1}'])
    assert.equal(await sink.flush(5000), true)
    assertAccounted(sink)
  })

  it('mqtt: without a client certificate the broker refuses; the sink stays down and keeps the message', async () => {
    const server = await startMosquitto({ mutualTls: true })
    const sink = create(mqttSinkType, { url: server.url, tls: { ca: 'ca.pem' } })
    await sink.start()
    sink.send(delivery('secure/out', 1))
    await until(() => sink.health().lastError !== undefined, 10_000, 'a TLS error')
    assert.notEqual(sink.health().state, 'up')
    assert.equal(sink.health().depth, 1)
    await sink.close(0)
    assert.equal(sink.counters().dropped.shutdown, 1)
    assertAccounted(sink)
  })

  it('nats: delivers over TLS when the CA is given (or verification is off), and stays down with the reason when it is not', async () => {
    const server = await startNatsServer({ tls: true })
    const checker = await natsConnect({ servers: server.url, tls: { ca: readFileSync(TLS_FILES.ca, 'utf8') } })
    onTeardown(async () => await checker.close())
    const got = new Latch<Msg>()
    checker.subscribe('secure.>', { callback: (_err, msg) => got.push(msg) })
    await checker.flush()

    const trusted = create(natsSinkType, { servers: server.url, tls: { ca: 'ca.pem' } })
    await trusted.start()
    trusted.send(delivery('secure.out', 1))
    const [msg] = await got.wait(1)
    assert.equal(Buffer.from(msg.data).toString(), '{"seq":1}')

    const unverified = create(natsSinkType, { servers: server.url, tls: { reject_unauthorized: false } })
    await unverified.start()
    unverified.send(delivery('secure.out', 3))
    const second = (await got.wait(2))[1]
    assert.equal(Buffer.from(second.data).toString(), '{"seq":3}', 'with reject_unauthorized: false, delivered without the CA')

    const untrusted = create(natsSinkType, { servers: server.url })
    await untrusted.start()
    untrusted.send(delivery('secure.out', 2))
    await until(() => untrusted.health().lastError !== undefined, 10_000, 'a TLS error')
    assert.match(untrusted.health().lastError ?? '', /cert|TLS|tls|self.signed|verify/i)
    assert.equal(untrusted.health().depth, 1)
  })

  it('nats: with tls://, refuses a server that offers no TLS instead of sending in plain text', async () => {
    const server = await startNatsServer()
    const checker = await natsConnect({ servers: server.url })
    onTeardown(async () => await checker.close())
    const got = new Latch<Msg>()
    checker.subscribe('secure.>', { callback: (_err, msg) => got.push(msg) })
    await checker.flush()

    const sink = create(natsSinkType, { servers: server.url.replace(/^nats:/, 'tls:') })
    await sink.start()
    sink.send(delivery('secure.out', 1))
    await until(() => sink.health().lastError !== undefined, 10_000, 'a TLS error')
    assert.match(sink.health().lastError ?? '', /the server does not offer TLS, which tls:\/\/ \(or a tls: file\) asks for/)
    assert.equal(sink.health().depth, 1)
    // Nothing reached the server in plain text.
    await checker.flush()
    assert.equal(got.items.length, 0)
    await sink.close(0)
    assert.equal(sink.counters().dropped.shutdown, 1)
    assertAccounted(sink)
  })
})
