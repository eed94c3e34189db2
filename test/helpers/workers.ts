/** `signalbox run --source … --share …` worker processes, and what each reports when it stops. */
import { spawnTracked, cliPath, withDataDir, type Spawned } from './process.js'
import { until } from './latch.js'

export interface Worker {
  proc: Spawned
  /** SIGTERM, then the counters it logged on the way out. */
  stop: () => Promise<StopReport>
  /** SIGKILL: a crash, no goodbye. */
  kill: () => Promise<void>
  /** The --http endpoint's URL, once it has logged it. */
  http: () => Promise<string>
}

export interface StopReport {
  engine: { received: number, unmatched: number, deadLettered: number, hopLimit: number }
  rules: Record<string, { matched: number, passed: number, published: number, dropped: number, errors: number }>
  sources: Record<string, { counters: { received: number, published: number, publishFailed: number } }>
}

/**
 * Starts a worker and waits until it has subscribed to every rule filter on its source (or, for a
 * source that cannot connect, until its log matches `readyWhen`).
 */
export async function startWorker (args: string[], readyWhen = /source subscriptions changed/): Promise<Worker> {
  const proc = spawnTracked(process.execPath, [cliPath(), ...withDataDir(['run', '--no-watch', ...args])])
  await until(() => readyWhen.test(proc.stderr()) || proc.child.exitCode !== null, 15_000, `worker log matching ${String(readyWhen)}`)
  if (proc.child.exitCode !== null) throw new Error('worker exited: ' + proc.stderr())
  return {
    proc,
    stop: async () => {
      proc.child.kill('SIGTERM')
      const code = await proc.exited
      if (code !== 0) throw new Error(`worker exited ${String(code)}: ${proc.stderr()}`)
      const line = proc.stderr().split('\n').find((l) => l.includes('"msg":"stopped"'))
      if (line === undefined) throw new Error('worker logged no stop report: ' + proc.stderr())
      return JSON.parse(line) as StopReport
    },
    kill: async () => {
      proc.child.kill('SIGKILL')
      await proc.exited
    },
    http: async () => {
      // The endpoint starts after the sources have subscribed.
      await until(() => /"url":"http:/.test(proc.stderr()), 10_000, 'monitoring endpoint logged')
      return /"url":"(http:[^"]+)"/.exec(proc.stderr())![1]
    }
  }
}
