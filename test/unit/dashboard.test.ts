// The Grafana dashboard in dashboards/ asks only for metrics that `signalbox run --http` serves.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createMetrics } from '../../engine/observe/prometheus.js'
import type { ServiceReport } from '../../engine/observe/report.js'
import { projectRoot } from '../helpers/paths.js'

interface Panel { title: string, targets: Array<{ expr: string }> }

describe('grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(join(projectRoot, 'dashboards', 'grafana.json'), 'utf8')) as { panels: Panel[] }

  it('uses only metric names the registry serves', async () => {
    const report: ServiceReport = {
      engine: { received: 0, unmatched: 0, deadLettered: 0, hopLimit: 0, replayedOutputs: 0 },
      rules: {},
      sinks: {},
      sources: {},
      reloads: { successes: 0, failures: 0, lastError: undefined, lastDurationMs: undefined, loading: false }
    }
    const served = new Set((await createMetrics(() => report).registry.getMetricsAsJSON()).map((m) => m.name))
    const used = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/signalbox_[a-z_]+/g) ?? [])))
    assert.ok(used.size >= 20, `the dashboard uses ${used.size} metrics`)
    for (const name of used) {
      const base = name.replace(/_(bucket|sum|count)$/, '')
      assert.ok(served.has(name) || served.has(base), `${name} is in the dashboard but not served`)
    }
  })

  it('gives every panel a title and at least one query', () => {
    for (const p of dashboard.panels) {
      assert.ok(p.title.length > 0)
      assert.ok(p.targets.length > 0, p.title)
    }
  })
})
