// Durable delivery on the embedded broker (issue 15): a QoS 1 publish whose PUBACK the publisher
// got reaches every rule output although `signalbox run` is killed (SIGKILL) before it could
// deliver it; the write-ahead log gives it back at the next start. Real processes throughout:
// signalbox, Mosquitto as the remote sink, mqtt.js publishers and subscribers.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { startRun } from '../helpers/cli.js'
import { Latch, until } from '../helpers/latch.js'
import { startMosquitto } from '../helpers/servers.js'
import { tempDir } from '../helpers/signalbox.js'
import { onTeardown } from '../helpers/teardown.js'

function rulesTo (remote: string): string {
  const file = join(tempDir(), 'rules.yaml')
  writeFileSync(file, `version: 1
sinks:
  remote:
    type: mqtt
    url: ${remote}
rules:
  - name: forward
    from: in/+id
    to:
      - sink: remote
        topic: out/{id}
        qos: 1
`)
  return file
}

async function publishAcked (port: number, count: number): Promise<number[]> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, protocolVersion: 4 })
  onTeardown(async () => await client.endAsync(true))
  const acked: number[] = []
  for (let id = 0; id < count; id++) {
    await client.publishAsync(`in/${id}`, String(id), { qos: 1 })
    acked.push(id)
  }
  await client.endAsync()
  return acked
}

async function collect (url: string): Promise<Latch<number>> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
  onTeardown(async () => await client.endAsync(true))
  const got = new Latch<number>()
  client.on('message', (_topic, payload) => got.push(Number(payload.toString())))
  await client.subscribeAsync('out/#', { qos: 1 })
  return got
}

describe('durability', function () {
  this.timeout(60_000)

  it('a sink down while messages are acknowledged, signalbox killed, the sink back, signalbox started again: every acknowledged message arrives', async () => {
    const remote = await startMosquitto()
    await remote.kill()
    const rules = rulesTo(remote.url)
    const dataDir = tempDir()
    const first = await startRun(['--data-dir', dataDir, '--no-watch', rules])
    const acked = await publishAcked(first.port, 500)
    first.proc.child.kill('SIGKILL')
    await first.proc.exited
    await remote.start()
    const got = await collect(remote.url)
    const second = await startRun(['--data-dir', dataDir, '--no-watch', rules])
    await until(() => new Set(got.items).size >= acked.length, 30_000, 'every acknowledged message at the remote broker')
    assert.deepEqual([...new Set(got.items)].sort((a, b) => a - b), acked)
    assert.match(second.proc.stderr(), /500 unsettled messages handled again/)
  })
})
