/** Helpers for benchmarks that run servers and clients as processes of their own. */
import { spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import mqtt from 'mqtt'

/** utime + stime of a process, in clock ticks (1/100 s on Linux). */
export function cpuTicks (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return Number(fields[11]) + Number(fields[12])
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)) })
  })
}

/** Resolves once an MQTT client can connect to the port. */
export async function waitForPort (port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 1000 })
      await c.endAsync()
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  throw new Error(`server on ${port} did not start`)
}

/** The mosquitto binary (Debian puts it in /usr/sbin), or undefined when it is not installed. */
export function mosquittoBinary (): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v mosquitto']).status === 0) return 'mosquitto'
  return spawnSync('test', ['-x', '/usr/sbin/mosquitto']).status === 0 ? '/usr/sbin/mosquitto' : undefined
}

/** The first line a child process prints on stdout (a role saying it is ready). */
export async function firstLine (proc: ChildProcess): Promise<string> {
  return await new Promise((resolve) => {
    let out = ''
    const onData = (d: Buffer): void => { out += d.toString(); if (out.includes('\n')) { proc.stdout!.off('data', onData); resolve(out.split('\n')[0]) } }
    proc.stdout!.on('data', onData)
  })
}

/** The last line a child process printed on stdout, once it has exited (a role's figures). */
export async function lastLine (proc: ChildProcess): Promise<string> {
  return await new Promise((resolve) => {
    let out = ''
    proc.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    proc.on('exit', () => resolve(out.trim().split('\n').pop()!))
  })
}

/** Runs `count` operations with `inFlight` outstanding at a time; resolves with the seconds taken. */
export async function windowed (count: number, inFlight: number, operation: (i: number) => Promise<unknown>): Promise<number> {
  const start = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < count) await operation(next++)
  }))
  return (performance.now() - start) / 1000
}
