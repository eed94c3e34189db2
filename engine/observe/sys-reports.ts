/**
 * Every N seconds, a summary on the embedded broker under $SYS/signalbox/ (retained, as brokers do
 * with $SYS), for people who watch with an MQTT client rather than Prometheus:
 * `$SYS/signalbox/summary`, `$SYS/signalbox/rules/<rule>` and `$SYS/signalbox/sinks/<sink>`.
 */
import type { ServiceReport } from './report.js'

export const SYS_PREFIX = '$SYS/signalbox'
export const DEFAULT_SYS_INTERVAL_S = 10

export function startSysReports (report: () => ServiceReport, publish: (topic: string, payload: Buffer) => void, intervalS: number): { stop: () => void } {
  const send = (): void => {
    const r = report()
    const summary = {
      time: new Date().toISOString(),
      uptimeS: Math.round(process.uptime()),
      rules: Object.keys(r.rules).length,
      ...r.engine,
      reloads: { successes: r.reloads.successes, failures: r.reloads.failures, lastError: r.reloads.lastError ?? null },
      broker: r.broker ?? null,
      sinks: Object.fromEntries(Object.entries(r.sinks).map(([name, s]) => [name, { state: s.health.state, depth: s.health.depth }]))
    }
    publish(`${SYS_PREFIX}/summary`, Buffer.from(JSON.stringify(summary)))
    for (const [name, counters] of Object.entries(r.rules)) publish(`${SYS_PREFIX}/rules/${name}`, Buffer.from(JSON.stringify(counters)))
    for (const [name, s] of Object.entries(r.sinks)) publish(`${SYS_PREFIX}/sinks/${name}`, Buffer.from(JSON.stringify({ type: s.type, ...s.health, ...s.counters })))
  }
  const timer = setInterval(send, intervalS * 1000)
  timer.unref()
  return { stop: () => { clearInterval(timer) } }
}
