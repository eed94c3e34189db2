// `signalbox run` with fixtures/sinks/pipeline.yaml (every sink type) against a real nats-server and
// a real mosquitto, fed by mosquitto_pub; then SIGTERM drains the sinks before the process exits 0.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { connect as natsConnect, StorageType, type Msg } from 'nats'
import { mosquittoPub, mosquittoSub, startRun } from '../../helpers/cli.js'
import { runCli } from '../../helpers/process.js'
import { Latch } from '../../helpers/latch.js'
import { projectRoot } from '../../helpers/paths.js'
import { startMosquitto, startNatsServer } from '../../helpers/servers.js'
import { tempDir } from '../../helpers/signalbox.js'
import { onTeardown } from '../../helpers/teardown.js'

/** The fixture, pointed at this test's servers, in a temporary directory (its files land there too). */
function pipelineFixture (natsUrl: string, mqttUrl: string): { dir: string, file: string } {
  const text = readFileSync(join(projectRoot, 'fixtures', 'sinks', 'pipeline.yaml'), 'utf8')
    .replace('nats://127.0.0.1:4222', natsUrl)
    .replace('mqtt://127.0.0.1:1884', mqttUrl)
  const dir = tempDir()
  const file = join(dir, 'pipeline.yaml')
  writeFileSync(file, text)
  return { dir, file }
}

/** The JSON object pino logged with this message. */
function logRecord (stderr: string, msg: string): Record<string, unknown> {
  const line = stderr.split('\n').find((l) => l.includes(`"msg":"${msg}"`))
  assert.ok(line !== undefined, `no '${msg}' log line in:\n${stderr}`)
  return JSON.parse(line) as Record<string, unknown>
}

describe('sinks end to end through signalbox run', function () {
  this.timeout(60_000)

  it('sends to the embedded broker, NATS, a remote broker and files, and drains on SIGTERM', async () => {
    const natsServer = await startNatsServer()
    const mosquitto = await startMosquitto()
    const nc = await natsConnect({ servers: natsServer.url })
    onTeardown(async () => await nc.close())
    const natsGot = new Latch<Msg>()
    nc.subscribe('>', { callback: (_err, msg) => natsGot.push(msg) })
    await nc.flush()
    const remote = await mqtt.connectAsync(mosquitto.url, { reconnectPeriod: 0 })
    onTeardown(async () => await remote.endAsync(true))
    const remoteGot = new Latch<string>()
    remote.on('message', (topic, payload) => remoteGot.push(`${topic} ${payload.toString()}`))
    await remote.subscribeAsync('site/#', { qos: 1 })

    const { dir, file } = pipelineFixture(natsServer.url, mosquitto.url)
    const { proc, port } = await startRun([file])
    const local = await mosquittoSub(port, ['alerts/#'])
    mosquittoPub(port, 'sensors/kitchen/temperature', '{"celsius":31}')
    mosquittoPub(port, 'home/doors/front', '{"open":true}')

    assert.deepEqual(await local.wait(1, 10_000), ['alerts/kitchen/hot {"room":"kitchen","celsius":31}'])
    assert.deepEqual(await remoteGot.wait(1, 10_000), ['site/alerts/kitchen {"room":"kitchen","celsius":31}'])
    const natsMsgs = (await natsGot.wait(2, 10_000)).map((m) => `${m.subject} ${Buffer.from(m.data).toString()} ${m.headers?.get('Signalbox-Rule') ?? ''}`).sort()
    assert.deepEqual(natsMsgs, ['alerts.kitchen.hot {"room":"kitchen","celsius":31} hot-room', 'doors.front {"open":true} door-events'])

    proc.child.kill('SIGTERM')
    assert.equal(await proc.exited, 0)
    const day = new Date().toISOString().slice(0, 10)
    const reading = JSON.parse(readFileSync(join(dir, 'data', 'kitchen', `${day}.jsonl`), 'utf8')) as Record<string, unknown>
    // mosquitto_pub -q 1: a logged message, so its line carries the output's id (the same after a replay).
    assert.match(String(reading.id), /^[0-9a-f]{12}-\d+\/0\/archive-readings\/0$/)
    assert.deepEqual({ ...reading, time: undefined, id: undefined }, { time: undefined, id: undefined, topic: 'sensors/kitchen/temperature', rule: 'archive-readings', payload: { celsius: 31 } })
    const door = JSON.parse(readFileSync(join(dir, 'data', 'doors.jsonl'), 'utf8')) as Record<string, unknown>
    assert.deepEqual(door.payload, { open: true })

    const stopped = logRecord(proc.stderr(), 'stopped') as { sinks: Record<string, { counters: { emitted: number, delivered: number } }> }
    assert.deepEqual(Object.fromEntries(Object.entries(stopped.sinks).map(([name, s]) => [name, [s.counters.emitted, s.counters.delivered]])),
      { bus: [2, 2], upstream: [1, 1], archive: [2, 2] })
  })

  it('on SIGTERM, delivers what was queued while NATS was down once it returns within the drain timeout', async () => {
    const natsServer = await startNatsServer()
    // A stream (kept on disk across the restart) records what reaches the server.
    const admin = await natsConnect({ servers: natsServer.url })
    const jsm = await admin.jetstreamManager()
    await jsm.streams.add({ name: 'DRAIN', subjects: ['alerts.>', 'doors.>'], storage: StorageType.File })
    await admin.close()
    await natsServer.stop()

    const { file } = pipelineFixture(natsServer.url, 'mqtt://127.0.0.1:1')
    const { proc, port } = await startRun(['--drain-timeout', '20000', file])
    for (let i = 0; i < 5; i++) mosquittoPub(port, `home/doors/d${i}`, `{"n":${i}}`)
    await natsServer.start()
    proc.child.kill('SIGTERM')
    assert.equal(await proc.exited, 0)

    const checker = await natsConnect({ servers: natsServer.url })
    onTeardown(async () => await checker.close())
    const info = await (await checker.jetstreamManager()).streams.info('DRAIN')
    assert.equal(info.state.messages, 5)
    const stopped = logRecord(proc.stderr(), 'stopped') as { sinks: Record<string, { counters: { delivered: number, dropped: Record<string, number> } }> }
    assert.equal(stopped.sinks.bus.counters.delivered, 5)
    assert.deepEqual(stopped.sinks.bus.counters.dropped, { queue_full: 0, rejected: 0, shutdown: 0 })
  })

  it('on SIGTERM, counts as dropped what a sink could not deliver within the drain timeout, and still exits 0', async () => {
    const { file } = pipelineFixture('nats://127.0.0.1:1', 'mqtt://127.0.0.1:1')
    const { proc, port } = await startRun(['--drain-timeout', '300', file])
    for (let i = 0; i < 3; i++) mosquittoPub(port, 'sensors/attic/temperature', `{"celsius":${40 + i}}`)
    proc.child.kill('SIGTERM')
    assert.equal(await proc.exited, 0)
    const stopped = logRecord(proc.stderr(), 'stopped') as { sinks: Record<string, { counters: { emitted: number, delivered: number, dropped: Record<string, number> } }> }
    // Three hot readings: each goes to NATS and upstream (both unreachable) and to the archive file.
    assert.deepEqual(stopped.sinks.bus.counters.dropped.shutdown, 3)
    assert.deepEqual(stopped.sinks.upstream.counters.dropped.shutdown, 3)
    assert.equal(stopped.sinks.archive.counters.delivered, 3)
  })

  it('refuses to start when a sink cannot (an unreadable TLS file), naming the sink, and exits 1', () => {
    const dir = tempDir()
    const file = join(dir, 'tls.yaml')
    writeFileSync(file, 'version: 1\nsinks:\n  secure: { type: mqtt, url: "mqtts://127.0.0.1:1", tls: { ca: missing.pem } }\nrules:\n  - name: r\n    from: a/#\n    to: [{ sink: secure }]\n')
    const r = runCli(['run', '--port', '0', file])
    assert.equal(r.status, 1)
    assert.equal(r.stderr.trim(), `signalbox: SINK_START: cannot start sink 'secure': tls.ca: cannot read ${join(dir, 'missing.pem')}: ENOENT: no such file or directory, open '${join(dir, 'missing.pem')}'`)
  })
})
