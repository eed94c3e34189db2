// The embedded broker remembers (issue 15): retained messages, a persistent session with its
// subscriptions and queued QoS 1 messages, and a QoS 2 exchange cut by a restart survive
// `signalbox run` being killed with SIGKILL and started again on the same data directory. Real
// processes and clients (mqtt.js, mosquitto_pub), and aedes-persistence's own abstract suite.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { connect as tcpConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import mqtt from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { mosquittoPubStatus, startRun } from '../helpers/cli.js'
import { Latch, until } from '../helpers/latch.js'
import { projectRoot } from '../helpers/paths.js'
import { cliPath } from '../helpers/process.js'
import { freePort } from '../helpers/servers.js'
import { tempDir } from '../helpers/signalbox.js'
import { onTeardown } from '../helpers/teardown.js'

function rules (): string {
  const file = join(tempDir(), 'rules.yaml')
  writeFileSync(file, 'version: 1\nrules:\n  - name: echo\n    from: in/+x\n    to:\n      - mqtt: echoed/{x}\n')
  return file
}

/** `signalbox run` on a fixed port and data directory, killed with SIGKILL and started again at will. */
async function restartable (): Promise<{ port: number, start: () => Promise<void>, kill: () => Promise<void> }> {
  const port = await freePort()
  const dataDir = tempDir()
  const file = rules()
  let current: Awaited<ReturnType<typeof startRun>> | undefined
  return {
    port,
    start: async () => { current = await startRun(['--data-dir', dataDir, '--no-watch', '--port', String(port), file]) },
    kill: async () => { current?.proc.child.kill('SIGKILL'); await current?.proc.exited; current = undefined }
  }
}

async function client (port: number, options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...options })
  onTeardown(async () => await c.endAsync(true))
  return c
}

describe('broker state across restarts', function () {
  this.timeout(60_000)

  it('passes aedes-persistence\'s own abstract test suite', () => {
    const r = spawnSync(process.execPath, ['--test', join(projectRoot, 'test', 'helpers', 'persistence-suite.mjs')], { cwd: projectRoot, encoding: 'utf8', timeout: 120_000 })
    cliPath() // the suite runs the built code: fail with the build hint when dist/ is missing
    assert.equal(r.status, 0, r.stdout.split('\n').filter((l) => l.startsWith('not ok') || l.includes('Error')).slice(0, 20).join('\n'))
    assert.match(r.stdout, /^# fail 0$/m)
    const passed = Number(/^# pass (\d+)$/m.exec(r.stdout)?.[1])
    // 50 tests, once with durability process and once with power.
    assert.ok(passed >= 100, `${passed} tests passed`)
  })

  it('keeps retained messages: set with mosquitto_pub -r, signalbox killed, a new subscriber gets them', async () => {
    const server = await restartable()
    await server.start()
    assert.equal(mosquittoPubStatus(server.port, 'status/boiler', 'on', ['-r', '-q', '1']), 0)
    assert.equal(mosquittoPubStatus(server.port, 'status/pump', 'off', ['-r', '-q', '1']), 0)
    assert.equal(mosquittoPubStatus(server.port, 'status/pump', '', ['-r', '-q', '1']), 0)
    await server.kill()
    await server.start()
    const c = await client(server.port)
    const got = new Latch<string>()
    c.on('message', (topic, payload, packet) => got.push(`${topic} ${payload.toString()} retain=${String(packet.retain)}`))
    await c.subscribeAsync('status/#', { qos: 1 })
    // The cleared one (empty retained payload) stays cleared: a probe published after shows nothing else came.
    await c.publishAsync('status/probe', 'p', { qos: 1 })
    await got.wait(2, 10_000)
    assert.deepEqual(got.items, ['status/boiler on retain=true', 'status/probe p retain=false'])
  })

  it('keeps a persistent session: its subscription and the QoS 1 messages queued while it was away reach it after signalbox is killed', async () => {
    const server = await restartable()
    await server.start()
    const away = await client(server.port, { clientId: 'session-1', clean: false })
    await away.subscribeAsync('alarms/#', { qos: 1 })
    await away.endAsync()
    const publisher = await client(server.port)
    for (let i = 0; i < 20; i++) await publisher.publishAsync(`alarms/a${i}`, String(i), { qos: 1 })
    await publisher.endAsync()
    await server.kill()
    await server.start()
    const got = new Latch<string>()
    const back = mqtt.connect(`mqtt://127.0.0.1:${server.port}`, { clientId: 'session-1', clean: false, reconnectPeriod: 0 })
    onTeardown(async () => await back.endAsync(true))
    back.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`))
    await got.wait(20, 10_000)
    assert.deepEqual(got.items, Array.from({ length: 20 }, (_, i) => `alarms/a${i} ${i}`))
    // And the subscription itself came back: a new message reaches it without subscribing again.
    const publisher2 = await client(server.port)
    await publisher2.publishAsync('alarms/after', 'x', { qos: 1 })
    await got.wait(21, 10_000)
    assert.equal(got.items[20], 'alarms/after x')
  })

  it('finishes a QoS 2 exchange cut by a restart: PUBREC before the kill, PUBREL after it, the message delivered once', async () => {
    const server = await restartable()
    await server.start()
    const subscriber = await client(server.port, { clientId: 'qos2-sub', clean: false })
    const got = new Latch<string>()
    subscriber.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`))
    await subscriber.subscribeAsync('q2/#', { qos: 2 })
    await subscriber.endAsync()
    // A client that speaks raw MQTT, so it can stop between PUBREC and PUBREL.
    const raw = await rawClient(server.port, 'qos2-pub')
    raw.send({ cmd: 'publish', topic: 'q2/one', payload: Buffer.from('once'), qos: 2, messageId: 7, retain: false, dup: false })
    assert.equal((await raw.next('pubrec')).messageId, 7)
    raw.close()
    await server.kill()
    await server.start()
    const again = await rawClient(server.port, 'qos2-pub')
    again.send({ cmd: 'pubrel', messageId: 7 })
    assert.equal((await again.next('pubcomp')).messageId, 7)
    // The subscriber comes back for what was queued for it: the message once, then a probe sent after it.
    const back = mqtt.connect(`mqtt://127.0.0.1:${server.port}`, { clientId: 'qos2-sub', clean: false, reconnectPeriod: 0 })
    onTeardown(async () => await back.endAsync(true))
    back.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`))
    await until(() => back.connected, 10_000, 'the subscriber back')
    await back.publishAsync('q2/probe', 'p', { qos: 2 })
    await got.wait(2, 10_000)
    assert.deepEqual(got.items, ['q2/one once', 'q2/probe p'])
  })
})

/** A bare MQTT 3.1.1 client over TCP: sends packets, waits for the next one of a kind. */
async function rawClient (port: number, clientId: string): Promise<{ send: (p: object) => void, next: (cmd: string) => Promise<{ messageId?: number }>, close: () => void }> {
  const socket: Socket = tcpConnect(port, '127.0.0.1')
  onTeardown(() => { socket.destroy() })
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const packets = new Latch<{ cmd: string, messageId?: number }>()
  parser.on('packet', (p) => packets.push(p as { cmd: string, messageId?: number }))
  socket.on('data', (d) => parser.parse(d))
  const send = (p: object): void => { socket.write(mqttPacket.generate(p as never)) }
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId, keepalive: 30 })
  let seen = 0
  const next = async (cmd: string): Promise<{ messageId?: number }> => {
    for (;;) {
      const items = await packets.wait(seen + 1, 10_000)
      const p = items[seen++]
      if (p.cmd === cmd) return p
    }
  }
  await next('connack')
  return { send, next, close: () => { socket.destroy() } }
}
