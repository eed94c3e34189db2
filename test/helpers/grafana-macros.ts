/**
 * Grafana's PostgreSQL macros, expanded as Grafana's server does before it sends a panel's SQL
 * (its documentation and pkg/tsdb/grafana-postgresql-datasource/macros.go are the reference):
 * `$__timeFilter(col)` → `col BETWEEN 'from' AND 'to'` (RFC 3339), `$__timeGroup(col, interval)`
 * → `floor(extract(epoch from col)/s)*s`, `$__timeGroupAlias` → the same `AS "time"`, and the
 * `$__interval` variable (interpolated first). Only these: a panel using another fails the test.
 */
export interface PanelRange {
  from: Date
  to: Date
  /** What Grafana would pick for $__interval, in seconds. */
  intervalS: number
}

const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }

function seconds (interval: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(interval.trim().replace(/^'|'$/g, ''))
  if (m === null) throw new Error(`interval '${interval}' is not one Grafana parses here`)
  return Number(m[1]) * UNITS[m[2]]
}

export function expandMacros (sql: string, range: PanelRange): string {
  const interval = `${range.intervalS}s`
  const withVariables = sql.replace(/\$__interval\b/g, interval)
  const expanded = withVariables.replace(/\$(__\w+)\(([^)]*)\)/g, (_all, name: string, rawArgs: string) => {
    const args = rawArgs.split(',').map((a) => a.trim())
    switch (name) {
      case '__timeFilter': return `${args[0]} BETWEEN '${range.from.toISOString()}' AND '${range.to.toISOString()}'`
      case '__timeGroup': return `floor(extract(epoch from ${args[0]})/${seconds(args[1])})*${seconds(args[1])}`
      case '__timeGroupAlias': return `floor(extract(epoch from ${args[0]})/${seconds(args[1])})*${seconds(args[1])} AS "time"`
      default: throw new Error(`macro $${name} is not expanded by this helper`)
    }
  })
  if (/\$__/.test(expanded)) throw new Error(`a macro or variable is left in: ${expanded}`)
  return expanded
}
