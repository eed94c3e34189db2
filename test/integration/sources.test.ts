// External sources through `signalbox run`: a broker that goes away and comes back, mutual TLS
// from a config file, NATS over TLS, and the errors a user gets for a bad --source or --share.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { connect as natsConnect } from 'nats'
import { Latch, until } from '../helpers/latch.js'
import { runCli } from '../helpers/process.js'
import { freePort, startMosquitto, startNatsServer, TLS_FILES, type TestServer } from '../helpers/servers.js'
import { tempDir } from '../helpers/signalbox.js'
import { onTeardown } from '../helpers/teardown.js'
import { startWorker } from '../helpers/workers.js'

const RULES = `
version: 1
rules:
  - name: echo
    from: in/+n
    set: { n: { var: params.n } }
    to:
      - mqtt: out/{n}
        qos: 1
`

function rulesFile (): string {
  const file = join(tempDir(), 'rules.yaml')
  writeFileSync(file, RULES)
  return file
}

async function collect (server: TestServer, options: mqtt.IClientOptions = {}): Promise<{ client: MqttClient, got: Latch<string> }> {
  const client = await mqtt.connectAsync(server.url, { reconnectPeriod: 0, ...options })
  onTeardown(async () => await client.endAsync(true))
  const got = new Latch<string>()
  client.on('message', (topic) => got.push(topic))
  await client.subscribeAsync('out/#', { qos: 1 })
  return { client, got }
}

async function metric (url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(name))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

describe('sources', function () {
  this.timeout(60_000)

  it('reconnects to a broker that went away, subscribes again, and handles what comes after; /metrics shows it down meanwhile', async () => {
    const server = await startMosquitto()
    const worker = await startWorker([rulesFile(), '--source', server.url, '--http', '127.0.0.1:0'])
    const http = await worker.http()
    const first = await collect(server)
    for (let i = 0; i < 50; i++) await first.client.publishAsync(`in/${i}`, 'x', { qos: 1 })
    await first.got.wait(50, 10_000)

    await server.stop()
    await until(async () => await metric(http, 'signalbox_source_up') === 0, 10_000, 'source reported down')
    await server.start()
    await until(async () => await metric(http, 'signalbox_source_up') === 1, 15_000, 'source reported up again')
    const second = await collect(server)
    // The worker subscribes again right after it connects; publish until one goes through, then the rest.
    await until(async () => { await second.client.publishAsync('in/probe', 'x', { qos: 1 }); return second.got.items.length > 0 }, 10_000, 'subscriptions restored')
    for (let i = 50; i < 100; i++) await second.client.publishAsync(`in/${i}`, 'x', { qos: 1 })
    await until(() => second.got.items.filter((t) => t !== 'out/probe').length === 50, 10_000, 'the 50 after the restart')
    const report = await worker.stop()
    // 100 messages and at least one probe went through the rule, and none failed.
    assert.ok(report.rules.echo.matched >= 101, `matched ${report.rules.echo.matched}`)
    assert.equal(report.rules.echo.errors, 0)
    assert.ok(report.sources[server.url].counters.published >= 101)
    assert.match(worker.proc.stderr(), /source disconnected; reconnecting/)
    assert.match(worker.proc.stderr(), /source connected/)
  })

  it('a reload while the broker is away: once back, the kept session drops the old filter and takes the new one', async () => {
    const server = await startMosquitto()
    const rules = rulesFile()
    const config = join(tempDir(), 'worker.yaml')
    writeFileSync(config, `sources:\n  - url: ${server.url}\n    client_id: kept-${process.pid}\n    session_expiry: 300\n`)
    const worker = await startWorker([rules, '--config', config, '--http', '127.0.0.1:0'])
    const http = await worker.http()
    await server.stop()
    await until(async () => await metric(http, 'signalbox_source_up') === 0, 10_000, 'source down')
    writeFileSync(rules, RULES.replace('from: in/+n', 'from: moved/+n'))
    const before = worker.proc.stderr().length
    worker.proc.child.kill('SIGHUP')
    await until(() => /source subscriptions changed/.test(worker.proc.stderr().slice(before)), 10_000, 'reloaded while away')
    await server.start()
    await until(async () => await metric(http, 'signalbox_source_up') === 1, 15_000, 'source up again')
    const { client, got } = await collect(server)
    await until(async () => { await client.publishAsync('moved/probe', 'x', { qos: 1 }); return got.items.length > 0 }, 10_000, 'the new filter works')
    // Messages arrive in order: once this one is out, every probe before it has been counted.
    await client.publishAsync('moved/mark', 'x', { qos: 1 })
    await until(() => got.items.includes('out/mark'), 10_000, 'the mark')
    const received = await metric(http, 'signalbox_source_received_total')
    for (let i = 0; i < 20; i++) await client.publishAsync(`in/${i}`, 'x', { qos: 1 })
    await client.publishAsync('moved/last', 'x', { qos: 1 })
    await until(() => got.items.includes('out/last'), 10_000, 'the last message on the new filter')
    assert.equal(await metric(http, 'signalbox_source_received_total'), received! + 1, 'nothing on the old filter reached the worker: the broker no longer sends it')
    await worker.stop()
  })

  // Failed before: the input's user properties and content type were not carried onto derived messages.
  it('carries an MQTT 5 input\'s user properties and content type onto its derived messages (JSON after a set)', async () => {
    const server = await startMosquitto()
    const file = join(tempDir(), 'rules.yaml')
    writeFileSync(file, `version: 1
rules:
  - name: pass
    from: in/+n
    to: [{ mqtt: "passed/{n}" }]
  - name: reshape
    from: in/+n
    set: { n: { var: params.n } }
    to: [{ mqtt: "reshaped/{n}" }]
`)
    const worker = await startWorker([file, '--source', server.url])
    const client = await mqtt.connectAsync(server.url, { reconnectPeriod: 0, protocolVersion: 5 })
    onTeardown(async () => await client.endAsync(true))
    const got = new Latch<{ topic: string, properties: unknown }>()
    client.on('message', (topic, _payload, packet) => got.push({ topic, properties: packet.properties }))
    await client.subscribeAsync(['passed/#', 'reshaped/#'], { qos: 1 })
    await client.publishAsync('in/1', 'plain words', { qos: 1, properties: { userProperties: { site: 'plant-a', tags: ['x', 'y'] }, contentType: 'text/plain' } })
    await client.publishAsync('in/2', 'no properties', { qos: 1 })
    const items = await got.wait(4, 10_000)
    // mqtt.js decodes user properties into an object without a prototype: compare a plain copy.
    const of = (topic: string): { userProperties?: Record<string, unknown>, contentType?: string } => {
      const p = items.find((m) => m.topic === topic)!.properties as { userProperties?: Record<string, unknown>, contentType?: string }
      return { ...p, userProperties: { ...p.userProperties } }
    }
    assert.deepEqual(of('passed/1').userProperties, { site: 'plant-a', tags: ['x', 'y'], 'signalbox-hops': '1' })
    assert.equal(of('passed/1').contentType, 'text/plain')
    assert.deepEqual(of('reshaped/1').userProperties, { site: 'plant-a', tags: ['x', 'y'], 'signalbox-hops': '1' })
    assert.equal(of('reshaped/1').contentType, 'application/json')
    assert.deepEqual(of('passed/2').userProperties, { 'signalbox-hops': '1' })
    assert.equal(of('passed/2').contentType, undefined)
    await worker.stop()
  })

  it('takes messages from a broker over mutual TLS, with credentials and TLS files from the config file', async () => {
    const server = await startMosquitto({ mutualTls: true })
    const dir = tempDir()
    const config = join(dir, 'worker.yaml')
    writeFileSync(config, [
      'sources:',
      `  - url: ${server.url}`,
      '    client_id: tls-worker',
      `    tls: { ca: ${TLS_FILES.ca}, cert: ${TLS_FILES.clientCert}, key: ${TLS_FILES.clientKey} }`,
      'share: workers',
      ''
    ].join('\n'))
    const worker = await startWorker([rulesFile(), '--config', config])
    const { client, got } = await collect(server, { ca: readFileSync(TLS_FILES.ca), cert: readFileSync(TLS_FILES.clientCert), key: readFileSync(TLS_FILES.clientKey) })
    await client.publishAsync('in/7', 'x', { qos: 1 })
    assert.deepEqual(await got.wait(1, 10_000), ['out/7'])
    assert.equal((await worker.stop()).rules.echo.published, 1)
  })

  it('takes messages from NATS over TLS (tls://) and sends derived ones back as subjects with the hop header', async () => {
    const server = await startNatsServer({ tls: true })
    const config = join(tempDir(), 'worker.yaml')
    writeFileSync(config, `sources:\n  - url: tls://127.0.0.1:${server.port}\n    tls: { ca: ${TLS_FILES.ca} }\n`)
    const worker = await startWorker([rulesFile(), '--config', config])
    const nc = await natsConnect({ servers: `127.0.0.1:${server.port}`, tls: { ca: readFileSync(TLS_FILES.ca, 'utf8') } })
    onTeardown(async () => await nc.close())
    const got = new Latch<{ subject: string, hops: string | undefined, body: string }>()
    nc.subscribe('out.>', { callback: (_err, msg) => got.push({ subject: msg.subject, hops: msg.headers?.get('Signalbox-Hops'), body: Buffer.from(msg.data).toString() }) })
    await nc.flush()
    nc.publish('in.42', 'x')
    assert.deepEqual(await got.wait(1, 10_000), [{ subject: 'out.42', hops: '1', body: '{"n":"42"}' }])
    await worker.stop()
  })

  it('with reject_unauthorized: false, takes messages from NATS over TLS without the CA', async () => {
    const server = await startNatsServer({ tls: true })
    const config = join(tempDir(), 'worker.yaml')
    writeFileSync(config, `sources:\n  - url: tls://127.0.0.1:${server.port}\n    tls: { reject_unauthorized: false }\n`)
    const worker = await startWorker([rulesFile(), '--config', config])
    const nc = await natsConnect({ servers: `127.0.0.1:${server.port}`, tls: { ca: readFileSync(TLS_FILES.ca, 'utf8') } })
    onTeardown(async () => await nc.close())
    const got = new Latch<string>()
    nc.subscribe('out.>', { callback: (_err, msg) => got.push(msg.subject) })
    await nc.flush()
    nc.publish('in.7', 'x')
    assert.deepEqual(await got.wait(1, 10_000), ['out.7'])
    await worker.stop()
  })

  it('with tls://, refuses a NATS server that offers no TLS instead of going on in plain text', async () => {
    const server = await startNatsServer()
    const worker = await startWorker([rulesFile(), '--source', `tls://127.0.0.1:${server.port}`], /source disconnected; reconnecting/)
    assert.match(worker.proc.stderr(), /the server does not offer TLS, which tls:\/\/ \(or a tls: file\) asks for/)
    const nc = await natsConnect({ servers: server.url })
    onTeardown(async () => await nc.close())
    nc.publish('in.1', 'x')
    await nc.flush()
    const report = await worker.stop()
    assert.equal(report.engine.received, 0)
  })

  it('with --source embedded, serves its own broker too; derived messages go back where their input came from', async () => {
    const server = await startMosquitto()
    const worker = await startWorker([rulesFile(), '--source', 'embedded', '--source', server.url, '--port', '0'])
    await until(() => /listening on 127\.0\.0\.1:\d+ \(tcp\)/.test(worker.proc.stderr()), 10_000, 'embedded listener logged')
    const embeddedPort = Number(/listening on 127\.0\.0\.1:(\d+) \(tcp\)/.exec(worker.proc.stderr())![1])
    const external = await collect(server)
    const local = await mqtt.connectAsync(`mqtt://127.0.0.1:${embeddedPort}`, { reconnectPeriod: 0 })
    onTeardown(async () => await local.endAsync(true))
    const localGot = new Latch<string>()
    local.on('message', (topic) => localGot.push(topic))
    await local.subscribeAsync('out/#', { qos: 1 })
    await local.publishAsync('in/local', 'x', { qos: 1 })
    await external.client.publishAsync('in/remote', 'x', { qos: 1 })
    assert.deepEqual(await localGot.wait(1, 10_000), ['out/local'])
    assert.deepEqual(await external.got.wait(1, 10_000), ['out/remote'])
    // Probes on each side, sent after both outputs went out: a wrong copy of either would come before them.
    await local.publishAsync('in/local-probe', 'x', { qos: 1 })
    await external.client.publishAsync('in/remote-probe', 'x', { qos: 1 })
    await localGot.wait(2, 10_000)
    await external.got.wait(2, 10_000)
    assert.deepEqual(localGot.items, ['out/local', 'out/local-probe'], 'the remote message\'s output did not come to the embedded broker')
    assert.deepEqual(external.got.items, ['out/remote', 'out/remote-probe'], 'the local message\'s output did not go to the remote broker')
    const report = await worker.stop()
    assert.equal(report.rules.echo.published, 4)
  })

  it('starts while its broker and NATS are unreachable, says they are down, and still stops cleanly on SIGTERM', async () => {
    const nowhere = await freePort()
    const worker = await startWorker([rulesFile(), '--source', `mqtt://127.0.0.1:${nowhere}`, '--source', `nats://127.0.0.1:${nowhere}`])
    await until(() => (worker.proc.stderr().match(/source disconnected; reconnecting/g) ?? []).length >= 2, 10_000, 'both sources reported down')
    const report = await worker.stop()
    assert.equal(report.engine.received, 0)
  })

  it('refuses a bad --source, --share without a source, and a sources: entry with a bad URL, saying why', () => {
    const rules = rulesFile()
    const scheme = runCli(['run', '--source', 'http://127.0.0.1:1883', rules])
    assert.equal(scheme.status, 2)
    assert.match(scheme.stderr, /the scheme must be mqtt:\/\/, mqtts:\/\/, ws:\/\/, wss:\/\/, nats:\/\/ or tls:\/\/ \(NATS over TLS\)/)
    const share = runCli(['run', '--share', 'workers', '--port', '0', rules])
    assert.equal(share.status, 1)
    assert.match(share.stderr, /--share splits the load of external sources: give --source mqtt:\/\/… or nats:\/\/… too/)
    const config = join(tempDir(), 'bad.yaml')
    writeFileSync(config, 'sources:\n  - url: broker:1883\n')
    const bad = runCli(['run', '--config', config, rules])
    assert.equal(bad.status, 1)
    assert.match(bad.stderr, /bad\.yaml:2:10: error BAD_VALUE: 'broker:1883': the scheme must be/)
  })
})
