/**
 * Every N seconds, reports on the embedded broker under $SYS/signalbox/ (retained, as brokers do
 * with $SYS), for people who watch with an MQTT client rather than Prometheus. A round publishes
 * `$SYS/signalbox/rules/<rule>` and `$SYS/signalbox/sinks/<sink>` for those whose counters changed
 * since their last report, an empty retained message for one a reload removed (clearing its
 * report), and last `$SYS/signalbox/summary`: one message whatever the rule count, saying how many
 * reports the round had. The rules are looked at SCAN_PER_TURN at a time and reports go out
 * REPORTS_PER_TURN at a time, a turn of the event loop apart, so a round over 100,000 rules never
 * holds the broker's thread for long.
 */
import type { RuleCounters } from '../runtime/counters.js'
import type { ServiceReport } from './report.js'

export const SYS_PREFIX = '$SYS/signalbox'
export const DEFAULT_SYS_INTERVAL_S = 10
/** Rules compared per turn of the event loop (a sum and a map lookup each). */
export const SCAN_PER_TURN = 5_000
/** Reports published per turn of the event loop. */
export const REPORTS_PER_TURN = 200

export interface SysReportSources {
  /** The report without the rules' counters: read for the summary and the sinks, once per round. */
  report: () => ServiceReport
  /** The names of the current set's rules; a new array only when the set changes. */
  ruleNames: () => readonly string[]
  /** A rule's live counters (no copy). */
  counters: (rule: string) => RuleCounters | undefined
}

/** A number that changes whenever any counter of a rule does (they only grow). */
function sum (c: RuleCounters): number {
  return c.matched + c.passed + c.filtered + c.errors + c.published + c.dropped
}

export function startSysReports (sources: SysReportSources, publish: (topic: string, payload: Buffer) => void, intervalS: number): { stop: () => void } {
  /** What each rule's last report said (its counters' sum), by name, and each sink's (its JSON). */
  const ruleSums = new Map<string, number>()
  const sinkReports = new Map<string, string>()
  let lastNames: readonly string[] = []
  // The current set's counters and last sums by position: a round compares numbers in arrays.
  let counters: Array<RuleCounters | undefined> = []
  let sums = new Float64Array(0)
  const state = { stopped: false, sending: false }
  const nextTurn = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

  const round = async (): Promise<void> => {
    let sent = 0
    let sentThisTurn = 0
    const send = async (topic: string, payload: Buffer): Promise<void> => {
      publish(topic, payload)
      sent++
      if (++sentThisTurn >= REPORTS_PER_TURN) { sentThisTurn = 0; await nextTurn() }
    }
    const names = sources.ruleNames()
    if (names !== lastNames) {
      // The set changed: clear the reports of rules that are gone, and line the rest up by position.
      const current = new Set(names)
      for (const name of [...ruleSums.keys()]) {
        if (current.has(name)) continue
        ruleSums.delete(name)
        await send(`${SYS_PREFIX}/rules/${name}`, Buffer.alloc(0))
      }
      counters = names.map((name) => sources.counters(name))
      sums = Float64Array.from(names, (name) => ruleSums.get(name) ?? NaN)
      lastNames = names
    }
    for (let i = 0; i < names.length && !state.stopped; i++) {
      if (i % SCAN_PER_TURN === SCAN_PER_TURN - 1) { sentThisTurn = 0; await nextTurn() }
      // A rule that has not run yet gets its counters when it first does.
      const c = counters[i] ?? (counters[i] = sources.counters(names[i]))
      if (c === undefined) continue
      const now = sum(c)
      if (sums[i] === now) continue
      sums[i] = now
      ruleSums.set(names[i], now)
      await send(`${SYS_PREFIX}/rules/${names[i]}`, Buffer.from(JSON.stringify(c)))
    }
    const r = sources.report()
    for (const [name, s] of Object.entries(r.sinks)) {
      const text = JSON.stringify({ type: s.type, ...s.health, ...s.counters })
      if (sinkReports.get(name) === text) continue
      sinkReports.set(name, text)
      await send(`${SYS_PREFIX}/sinks/${name}`, Buffer.from(text))
    }
    for (const name of [...sinkReports.keys()]) {
      if (name in r.sinks) continue
      sinkReports.delete(name)
      await send(`${SYS_PREFIX}/sinks/${name}`, Buffer.alloc(0))
    }
    if (state.stopped) return
    publish(`${SYS_PREFIX}/summary`, Buffer.from(JSON.stringify({
      time: new Date().toISOString(),
      uptimeS: Math.round(process.uptime()),
      rules: names.length,
      ...r.engine,
      reloads: { successes: r.reloads.successes, failures: r.reloads.failures, lastError: r.reloads.lastError ?? null },
      broker: r.broker ?? null,
      sinks: Object.fromEntries(Object.entries(r.sinks).map(([name, s]) => [name, { state: s.health.state, depth: s.health.depth }])),
      // The rule and sink reports this round published before the summary (changed or cleared).
      reports: sent
    })))
  }

  const timer = setInterval(() => {
    // A slow round is not overlapped by the next one.
    if (state.sending) return
    state.sending = true
    round().catch(() => {}).finally(() => { state.sending = false })
  }, intervalS * 1000)
  timer.unref()
  return { stop: () => { state.stopped = true; clearInterval(timer) } }
}
