/**
 * The peer row of the broker benchmark: Node-RED (when `node-red` is on PATH) running the flow the
 * issue names, mqtt in → switch → change → mqtt out, against Mosquitto, on the same workload: the
 * switch passes payload.value ≥ 50, the change node builds {seq, t, doubled} (JSONata) and sets the
 * topic. Node-RED's rate is the flood's N inputs over the time until its last output arrived at a
 * subscriber (it cannot take messages faster than it handles them, so this is its input rate).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { freePort, waitForPort } from './processes.js'

/** The node-red command, or undefined when it is not installed. */
export function nodeRedBinary (): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v node-red'], { encoding: 'utf8' })
  return found.status === 0 ? found.stdout.trim() : undefined
}

function flow (brokerPort: number): unknown[] {
  return [
    { id: 'sbx0tab', type: 'tab', label: 'signalbox bench' },
    { id: 'sbx1broker', type: 'mqtt-broker', name: 'mosquitto', broker: '127.0.0.1', port: String(brokerPort), clientid: '', autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true },
    // Five or more levels: the workload's topics, not the flow's own out/… outputs.
    { id: 'sbx2in', type: 'mqtt in', z: 'sbx0tab', topic: '+/+/+/+/#', qos: '0', datatype: 'json', broker: 'sbx1broker', nl: false, rap: true, rh: 0, inputs: 0, wires: [['sbx3switch']] },
    { id: 'sbx3switch', type: 'switch', z: 'sbx0tab', property: 'payload.value', propertyType: 'msg', rules: [{ t: 'gte', v: '50', vt: 'num' }], checkall: 'true', repair: false, outputs: 1, wires: [['sbx4change']] },
    {
      id: 'sbx4change',
      type: 'change',
      z: 'sbx0tab',
      rules: [
        { t: 'set', p: 'payload', pt: 'msg', to: '{"seq": payload.seq, "t": payload.t, "doubled": payload.value * 2}', tot: 'jsonata' },
        { t: 'set', p: 'topic', pt: 'msg', to: 'out/nodered', tot: 'str' }
      ],
      wires: [['sbx5out']]
    },
    { id: 'sbx5out', type: 'mqtt out', z: 'sbx0tab', topic: '', qos: '0', retain: 'false', broker: 'sbx1broker', wires: [] }
  ]
}

/**
 * Starts Mosquitto and Node-RED with the flow, waits until a probe makes it through, then runs
 * `flood(port)` (which publishes the N inputs) and returns N over the seconds until the last output,
 * with the number of outputs that arrived (the caller knows how many should).
 */
export async function nodeRedRate (dir: string, mosquitto: string, nodeRed: string, inputs: number, flood: (port: number) => Promise<void>): Promise<{ rate: number, outputs: number }> {
  const port = await freePort()
  const uiPort = await freePort()
  const userDir = join(dir, `node-red-${port}`)
  mkdirSync(userDir)
  writeFileSync(join(userDir, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\n`)
  writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flow(port)))
  writeFileSync(join(userDir, 'settings.cjs'), `module.exports = { uiHost: '127.0.0.1', uiPort: ${uiPort}, flowFile: 'flows.json', credentialSecret: false, logging: { console: { level: 'warn' } } }\n`)
  const started: ChildProcess[] = []
  try {
    started.push(spawn(mosquitto, ['-c', join(userDir, 'mosquitto.conf')], { stdio: 'ignore' }))
    await waitForPort(port)
    started.push(spawn(nodeRed, ['--userDir', userDir, '--settings', join(userDir, 'settings.cjs')], { stdio: 'ignore' }))
    const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
    // A holder, not a local: the loops below wait for the message handler to change it.
    const seen = { outputs: 0, last: 0 }
    watcher.on('message', () => { seen.outputs++; seen.last = performance.now() })
    await watcher.subscribeAsync('out/#', { qos: 0 })
    // Node-RED takes seconds to start and subscribe: probe until an output comes back.
    const deadline = Date.now() + 60_000
    while (seen.outputs === 0) {
      if (Date.now() > deadline) throw new Error('Node-RED did not pass a probe message within 60 s')
      await watcher.publishAsync('probe/a/b/c/d', JSON.stringify({ seq: -1, value: 99, t: 0 }))
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
    seen.outputs = 0
    const start = performance.now()
    await flood(port)
    // Done when no output has come for 2 s.
    while (performance.now() - Math.max(seen.last, start) < 2000) await new Promise((resolve) => setTimeout(resolve, 100))
    await watcher.endAsync()
    if (seen.outputs === 0) throw new Error('Node-RED produced no outputs from the flood')
    return { rate: inputs / ((seen.last - start) / 1000), outputs: seen.outputs }
  } finally {
    for (const p of started) p.kill('SIGKILL')
  }
}
