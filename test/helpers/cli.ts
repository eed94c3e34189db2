/** `signalbox run` as a child process, and the Mosquitto command-line clients that talk to it. */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { Latch } from './latch.js'
import { cliPath, requireBinary, spawnTracked, withDataDir, type Spawned } from './process.js'

const MOSQUITTO_HINT = 'apt-get install -y mosquitto-clients'

/** Starts `signalbox run` on a free port and waits for the log line that names it. */
export async function startRun (args: string[]): Promise<{ proc: Spawned, port: number }> {
  const { proc, ports } = await startRunWith(['--port', '0', ...args], 1)
  return { proc, port: ports[0].port }
}

/** Starts `signalbox run ARGS` and waits until it logged `listeners` listening lines; returns them in order. */
export async function startRunWith (args: string[], listeners: number): Promise<{ proc: Spawned, ports: Array<{ type: string, host: string, port: number }> }> {
  const proc = spawnTracked(process.execPath, [cliPath(), ...withDataDir(['run', ...args])])
  const deadline = Date.now() + 10000
  while (Date.now() < deadline) {
    const found = [...proc.stderr().matchAll(/listening on ([^ "]+):(\d+) \((\w+)\)/g)].map((m) => ({ host: m[1], port: Number(m[2]), type: m[3] }))
    if (found.length >= listeners) return { proc, ports: found }
    if (proc.child.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error('signalbox run did not start: ' + proc.stderr())
}

/**
 * mosquitto_sub printing "topic payload" lines (-v). Its stdout is block-buffered into a pipe except
 * after each message, so readiness is proven with a message: a ready topic is published until it arrives.
 */
export async function mosquittoSub (port: number, filters: string[], options: string[] = []): Promise<Latch<string>> {
  requireBinary('mosquitto_sub', MOSQUITTO_HINT)
  const ready = `signalbox-test/ready/${process.pid}`
  const args = ['-h', '127.0.0.1', '-p', String(port), '-v', '-W', '30', ...options, '-t', ready]
  for (const f of filters) args.push('-t', f)
  const sub = spawnTracked('mosquitto_sub', args)
  const deadline = Date.now() + 10000
  while (!sub.lines.items.some((l) => l.startsWith(ready))) {
    if (Date.now() > deadline) throw new Error('mosquitto_sub never received its ready message: ' + sub.stderr())
    mosquittoPub(port, ready, 'x')
    await sub.lines.wait(1, 200).catch(() => undefined)
  }
  const messages = new Latch<string>()
  let forwarded = 0
  const forward = (): void => {
    for (; forwarded < sub.lines.items.length; forwarded++) {
      const line = sub.lines.items[forwarded]
      if (!line.startsWith(ready)) messages.push(line)
    }
  }
  sub.child.stdout!.on('data', () => setImmediate(forward))
  forward()
  return messages
}

export function mosquittoPub (port: number, topic: string, message: string): void {
  assert.equal(mosquittoPubStatus(port, topic, message, ['-q', '1']), 0, 'mosquitto_pub failed')
}

/** Runs mosquitto_pub with extra options (e.g. `-V mqttv5`) and returns its exit status. */
export function mosquittoPubStatus (port: number, topic: string, message: string, options: string[]): number | null {
  requireBinary('mosquitto_pub', MOSQUITTO_HINT)
  return runSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-m', message, ...options])
}

function runSync (command: string, args: string[]): number | null {
  return spawnSync(command, args, { timeout: 10000 }).status
}
