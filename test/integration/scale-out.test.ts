// Scale-out: `signalbox run` workers attached to a real mosquitto (shared subscriptions) and a real
// nats-server (queue group). 1, 2 and 3 workers split 30,000 messages and the union of what they
// derive holds every message exactly once; a worker killed mid-stream loses only what its QoS and
// session allow; a reload changes a worker's subscriptions; hop counts cross workers.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { connect as natsConnect, type NatsConnection } from 'nats'
import { Latch, until } from '../helpers/latch.js'
import { startMosquitto, startNatsServer, type TestServer } from '../helpers/servers.js'
import { tempDir } from '../helpers/signalbox.js'
import { onTeardown } from '../helpers/teardown.js'
import { startWorker, type Worker } from '../helpers/workers.js'

const MESSAGES = 30_000
/** Mosquitto's window of unacknowledged QoS 1 messages per client: the most a killed worker can have been handed and not acknowledged. */
const MAX_INFLIGHT = 20

const RULES = `
version: 1
rules:
  - name: tag
    from: in/+device/reading
    set: { id: { var: payload.id }, device: { var: params.device } }
    to:
      - mqtt: out/{device}
        qos: 1
`

/** A broker for workers: no cap on queued messages, so a flood is never dropped by the broker itself. */
async function broker (): Promise<TestServer> {
  return await startMosquitto({ extraConfig: ['max_queued_messages 0', `max_inflight_messages ${MAX_INFLIGHT}`] })
}

function rulesFile (yaml = RULES): string {
  const file = join(tempDir(), 'rules.yaml')
  writeFileSync(file, yaml)
  return file
}

async function mqttClient (server: TestServer, id: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(server.url, { clientId: `${id}-${process.pid}`, protocolVersion: 5, reconnectPeriod: 0 })
  onTeardown(async () => await client.endAsync(true))
  return client
}

/** Collects derived messages by id; counts every copy so duplicates show. */
class Collector {
  readonly copies = new Map<number, number>()
  readonly arrived = new Latch<number>()
  add (id: number): void {
    this.copies.set(id, (this.copies.get(id) ?? 0) + 1)
    this.arrived.push(id)
  }

  duplicates (): number[] {
    return [...this.copies].filter(([, n]) => n > 1).map(([id]) => id)
  }

  missing (from: number, to: number): number[] {
    const out: number[] = []
    for (let id = from; id < to; id++) if (!this.copies.has(id)) out.push(id)
    return out
  }
}

async function mqttCollector (server: TestServer): Promise<Collector> {
  const client = await mqttClient(server, 'collector')
  const collector = new Collector()
  client.on('message', (_topic, payload) => collector.add((JSON.parse(payload.toString()) as { id: number }).id))
  await client.subscribeAsync('out/#', { qos: 1 })
  return collector
}

/** Publishes ids [from, to) at QoS 1 over 10 devices, and waits for every PUBACK. */
async function publishMqtt (client: MqttClient, from: number, to: number): Promise<void> {
  const pending: Array<Promise<unknown>> = []
  for (let id = from; id < to; id++) pending.push(client.publishAsync(`in/d${id % 10}/reading`, JSON.stringify({ id }), { qos: 1 }))
  await Promise.all(pending)
}

/** `count` workers sharing the source's messages (MQTT shared subscription or NATS queue group 'workers'), started one after another. */
async function sharingWorkers (count: number, rules: string, url: string, ...extra: string[]): Promise<Worker[]> {
  const workers: Worker[] = []
  for (let i = 0; i < count; i++) workers.push(await startWorker([rules, '--source', url, '--share', 'workers', ...extra]))
  return workers
}

async function stopAll (workers: Worker[]): Promise<number[]> {
  const reports = await Promise.all(workers.map(async (w) => await w.stop()))
  return reports.map((r) => r.rules.tag.matched)
}

describe('scale-out on mosquitto (shared subscriptions)', function () {
  this.timeout(120_000)

  for (const count of [1, 2, 3]) {
    it(`${count} worker${count === 1 ? '' : 's'} split ${MESSAGES.toLocaleString('en')} messages: each takes a share, the union has every message exactly once`, async () => {
      const server = await broker()
      const rules = rulesFile()
      const workers = await sharingWorkers(count, rules, server.url)
      const collector = await mqttCollector(server)
      await publishMqtt(await mqttClient(server, 'publisher'), 0, MESSAGES)
      await collector.arrived.wait(MESSAGES, 60_000)
      const shares = await stopAll(workers)
      assert.deepEqual(collector.missing(0, MESSAGES), [])
      assert.deepEqual(collector.duplicates(), [])
      assert.equal(collector.arrived.items.length, MESSAGES)
      assert.equal(shares.reduce((a, b) => a + b, 0), MESSAGES, `shares ${shares.join(' + ')}`)
      for (const share of shares) assert.ok(share > 0, `every worker takes a share: ${shares.join(', ')}`)
    })
  }

  it('a worker killed mid-stream with a clean session loses only what the broker had handed or queued to it; the others take every later message, none twice', async () => {
    const server = await broker()
    const rules = rulesFile()
    const workers = await sharingWorkers(3, rules, server.url)
    const collector = await mqttCollector(server)
    const publisher = await mqttClient(server, 'publisher')
    const half = MESSAGES / 2
    const first = publishMqtt(publisher, 0, half)
    await collector.arrived.wait(half / 5, 30_000)
    await workers[1].kill()
    await first
    await publishMqtt(publisher, half, MESSAGES)
    await until(() => collector.missing(half, MESSAGES).length === 0, 60_000, 'every message published after the kill')
    const shares = await stopAll([workers[0], workers[2]])
    assert.deepEqual(collector.duplicates(), [])
    // What is missing was published before the kill: the dead worker's session held it.
    assert.ok(collector.missing(0, half).length < half, 'the survivors took their share of the earlier messages')
    assert.ok(shares[0] + shares[1] >= half, `the survivors took every later message and their share of the earlier: ${shares.join(', ')}`)
  })

  it('a worker killed mid-stream with a kept session (session_expiry, fixed client id) loses nothing once it is back: at-least-once, duplicates within the in-flight window', async () => {
    const server = await broker()
    const rules = rulesFile()
    const config = join(tempDir(), 'worker.yaml')
    const configFor = (id: string): string => {
      const file = config.replace('.yaml', `-${id}.yaml`)
      writeFileSync(file, `sources:\n  - url: ${server.url}\n    client_id: ${id}-${process.pid}\n    qos: 1\n    session_expiry: 300\nshare: workers\n`)
      return file
    }
    const configs = [configFor('w1'), configFor('w2'), configFor('w3')]
    const workers = await Promise.all(configs.map(async (c) => await startWorker([rules, '--config', c])))
    const collector = await mqttCollector(server)
    const publisher = await mqttClient(server, 'publisher')
    const sending = publishMqtt(publisher, 0, MESSAGES)
    await collector.arrived.wait(MESSAGES / 6, 30_000)
    await workers[1].kill()
    await new Promise((resolve) => setTimeout(resolve, 300))
    workers[1] = await startWorker([rules, '--config', configs[1]])
    await sending
    await until(() => collector.missing(0, MESSAGES).length === 0, 60_000, 'every message, the killed worker\'s included')
    await stopAll(workers)
    const duplicates = collector.duplicates()
    assert.ok(duplicates.length <= MAX_INFLIGHT, `${duplicates.length} duplicates; at most the ${MAX_INFLIGHT} in flight to the killed worker may come twice`)
  })

  it('follows a reload: a worker sent SIGHUP after its rules changed subscribes to the new filter and drops the old one', async () => {
    const server = await broker()
    const rules = rulesFile()
    const worker = await startWorker([rules, '--source', server.url, '--share', 'workers'])
    const collector = await mqttCollector(server)
    const publisher = await mqttClient(server, 'publisher')
    writeFileSync(rules, RULES.replace('from: in/+device/reading', 'from: moved/+device/reading'))
    const before = worker.proc.stderr().length
    worker.proc.child.kill('SIGHUP')
    await until(() => /source subscriptions changed/.test(worker.proc.stderr().slice(before)), 10_000, 'subscriptions changed after the reload')
    assert.match(worker.proc.stderr().slice(before), /"added":\["moved\/\+\/reading"\],"removed":\["in\/\+\/reading"\]/)
    await publishMqtt(publisher, 0, 5)
    await publisher.publishAsync('moved/d1/reading', JSON.stringify({ id: 100 }), { qos: 1 })
    await collector.arrived.wait(1, 10_000)
    const report = await worker.stop()
    assert.deepEqual([...collector.copies.keys()], [100], 'only the message on the new filter was handled')
    assert.equal(report.sources[server.url].counters.received, 1)
  })

  it('carries the hop count across workers in an MQTT 5 user property, so a loop between two rules stops at max_hops', async () => {
    const server = await broker()
    const rules = rulesFile(`
version: 1
rules:
  - name: ping
    from: loop/ping
    to:
      - mqtt: loop/pong
        qos: 1
  - name: pong
    from: loop/pong
    to:
      - mqtt: loop/ping
        qos: 1
`)
    const workers = await sharingWorkers(2, rules, server.url, '--max-hops', '5')
    const watcher = await mqttClient(server, 'watcher')
    const seen = new Latch<{ topic: string, hops: string | undefined }>()
    watcher.on('message', (topic, _payload, packet) => seen.push({ topic, hops: packet.properties?.userProperties?.['signalbox-hops'] as string | undefined }))
    await watcher.subscribeAsync('loop/#', { qos: 1 })
    await watcher.publishAsync('loop/ping', 'ball', { qos: 1 })
    await seen.wait(6, 10_000)
    // The loop is over once a worker has refused the sixth hop: nothing after that can be published.
    await until(() => workers.some((w) => /message dropped after 5 hops/.test(w.proc.stderr())), 10_000, 'the sixth hop refused')
    const reports = await Promise.all(workers.map(async (w) => await w.stop()))
    assert.deepEqual(seen.items.map((s) => s.hops), [undefined, '1', '2', '3', '4', '5'], 'the original and 5 derived messages, each one hop further')
    assert.equal(reports.reduce((n, r) => n + r.engine.hopLimit, 0), 1, 'the sixth hop was refused once, by whichever worker had it')
  })
})

describe('scale-out on NATS (queue group)', function () {
  this.timeout(120_000)

  async function natsClient (server: TestServer): Promise<NatsConnection> {
    const nc = await natsConnect({ servers: server.url })
    onTeardown(async () => await nc.close())
    return nc
  }

  async function natsCollector (server: TestServer): Promise<Collector> {
    const nc = await natsClient(server)
    const collector = new Collector()
    nc.subscribe('out.>', { callback: (err, msg) => { if (err === null) collector.add((JSON.parse(Buffer.from(msg.data).toString()) as { id: number }).id) } })
    await nc.flush()
    return collector
  }

  async function publishNats (nc: NatsConnection, from: number, to: number): Promise<void> {
    for (let id = from; id < to; id++) {
      nc.publish(`in.d${id % 10}.reading`, JSON.stringify({ id }))
      // Let the workers keep up: core NATS drops for a slow consumer rather than queueing without bound.
      if (id % 1000 === 999) await nc.flush()
    }
    await nc.flush()
  }

  for (const count of [1, 2, 3]) {
    it(`${count} worker${count === 1 ? '' : 's'} split ${MESSAGES.toLocaleString('en')} messages in a queue group: the union has every message exactly once`, async () => {
      const server = await startNatsServer()
      const rules = rulesFile()
      const workers = await sharingWorkers(count, rules, server.url)
      const collector = await natsCollector(server)
      await publishNats(await natsClient(server), 0, MESSAGES)
      await collector.arrived.wait(MESSAGES, 60_000)
      const shares = await stopAll(workers)
      assert.deepEqual(collector.missing(0, MESSAGES), [])
      assert.deepEqual(collector.duplicates(), [])
      assert.equal(shares.reduce((a, b) => a + b, 0), MESSAGES, `shares ${shares.join(' + ')}`)
      for (const share of shares) assert.ok(share > 0, `every worker takes a share: ${shares.join(', ')}`)
    })
  }

  it('a worker killed mid-stream: core NATS is at-most-once, so what it held is lost; the others take every later message, none twice', async () => {
    const server = await startNatsServer()
    const rules = rulesFile()
    const workers = await sharingWorkers(3, rules, server.url)
    const collector = await natsCollector(server)
    const nc = await natsClient(server)
    const half = MESSAGES / 2
    await publishNats(nc, 0, half / 2)
    await collector.arrived.wait(half / 4, 30_000)
    await workers[1].kill()
    await publishNats(nc, half / 2, half)
    // The server notices the dead connection on the next write or ping; wait until the survivors take everything.
    await new Promise((resolve) => setTimeout(resolve, 500))
    await publishNats(nc, half, MESSAGES)
    await until(() => collector.missing(half, MESSAGES).length === 0, 60_000, 'every message published once the server knew')
    await stopAll([workers[0], workers[2]])
    assert.deepEqual(collector.duplicates(), [])
  })
})
