/**
 * Readiness: the broker (or every source) takes messages, rules are loaded, and every sink is
 * connected or still within its retry budget: down for less than the grace period with room left
 * in its queue. A sink that has been down longer, or is dropping for a full queue, makes the
 * process not ready, and the body names it.
 */
import type { ServiceReport } from './report.js'

export const DEFAULT_READY_GRACE_MS = 30_000

export interface Readiness {
  ready: boolean
  /** One line per thing that is not ready. */
  problems: string[]
}

export function readiness (report: ServiceReport, state: { stopping: boolean, graceMs: number, now: number }): Readiness {
  const problems: string[] = []
  if (state.stopping) problems.push('stopping')
  if (Object.keys(report.rules).length === 0) problems.push('rules: none loaded')
  if (report.journal !== undefined && report.journal.waitingForRoom > 0) problems.push(`write-ahead log full (${report.journal.bytes} bytes, ${report.journal.unsettled} unsettled): ${report.journal.waitingForRoom} publishes wait for their ack`)
  for (const [name, s] of Object.entries(report.sinks)) {
    const { state: sinkState, since, depth, capacity, lastError } = s.health
    if (sinkState === 'up') continue
    const downFor = state.now - since
    const why = lastError === undefined ? '' : `: ${lastError}`
    if (depth >= capacity) problems.push(`sink ${name}: ${sinkState}, queue full (${depth} of ${capacity})${why}`)
    else if (downFor >= state.graceMs) problems.push(`sink ${name}: ${sinkState} for ${Math.round(downFor / 1000)} s${why}`)
  }
  for (const [name, s] of Object.entries(report.sources)) {
    if (s.health.state === 'up') continue
    const downFor = state.now - s.health.since
    if (downFor >= state.graceMs) problems.push(`source ${name}: ${s.health.state} for ${Math.round(downFor / 1000)} s${s.health.lastError === undefined ? '' : `: ${s.health.lastError}`}`)
  }
  return { ready: problems.length === 0, problems }
}
