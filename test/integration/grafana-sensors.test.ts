// The README's story to its end: readings published over MQTT, written by a rule into PostgreSQL,
// and every panel of dashboards/sensors.json run against that database with Grafana's macros
// expanded as Grafana expands them (test/helpers/grafana-macros.ts), checking the rows it plots.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expandMacros } from '../helpers/grafana-macros.js'
import { until } from '../helpers/latch.js'
import { connect } from '../helpers/mqtt.js'
import { projectRoot } from '../helpers/paths.js'
import { startPostgres } from '../helpers/postgres.js'
import { startSignalbox } from '../helpers/signalbox.js'

interface Panel { title: string, type: string, datasource: { type: string }, targets: Array<{ rawSql: string, format: string }> }

const dashboard = JSON.parse(readFileSync(join(projectRoot, 'dashboards', 'sensors.json'), 'utf8')) as { panels: Panel[] }

describe('dashboards/sensors.json against a real PostgreSQL', function () {
  this.timeout(60_000)

  it('plots what the README story writes: a series per room, the latest reading of each, the count', async () => {
    const db = await startPostgres()
    // The rules of the README's story, as written there.
    const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8')
    const story = /<!-- story-rules -->\n```yaml\n([\s\S]*?)```/.exec(readme)
    assert.ok(story !== null, 'the README holds the story\'s rules between <!-- story-rules --> and a yaml block')
    const sb = await startSignalbox(story[1].replace('postgres://signalbox@127.0.0.1:5432/plant', db.url))
    const client = await connect(sb.port)
    const now = Date.now()
    const minute = (ago: number): number => Math.floor(now / 60_000) * 60_000 - ago * 60_000
    // Three rooms, two readings a minute for the last 5 minutes (their own time, from the payload).
    const sent: Array<{ room: string, at: number, celsius: number }> = []
    for (const [r, room] of ['kitchen', 'hall', 'attic'].entries()) {
      for (let ago = 4; ago >= 0; ago--) {
        for (const second of [10, 40]) sent.push({ room, at: minute(ago) + second * 1000, celsius: 18 + r + ago / 10 + second / 100 })
      }
    }
    for (const s of sent) await client.publishAsync(`sensors/${s.room}/temperature`, JSON.stringify({ celsius: s.celsius, ts: s.at }), { qos: 1 })
    await until(async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM readings').catch(() => [{ n: '0' }]))[0].n) === sent.length, 10_000, 'every reading in the table')

    const range = { from: new Date(now - 3_600_000), to: new Date(now + 60_000), intervalS: 60 }
    const run = async (title: string): Promise<Array<Record<string, unknown>>> => {
      const panel = dashboard.panels.find((p) => p.title === title)
      assert.ok(panel !== undefined, `panel ${title}`)
      assert.equal(panel.datasource.type, 'grafana-postgresql-datasource')
      return await db.query(expandMacros(panel.targets[0].rawSql, range))
    }

    const series = await run('Temperature by room')
    assert.equal(series.length, 15, 'one point per room and minute')
    for (const point of series) {
      const at = Number(point.time) * 1000
      const inMinute = sent.filter((s) => s.room === point.metric && s.at >= at && s.at < at + 60_000)
      assert.equal(inMinute.length, 2, `two readings of ${String(point.metric)} in the minute at ${new Date(at).toISOString()}`)
      assert.ok(Math.abs(Number(point.value) - (inMinute[0].celsius + inMinute[1].celsius) / 2) < 1e-9)
    }
    assert.deepEqual([...new Set(series.map((p) => p.metric))].sort(), ['attic', 'hall', 'kitchen'])

    const latest = await run('Latest reading per room')
    assert.deepEqual(latest.map((row) => [row.room, (row.time as Date).getTime(), row.celsius]), ['attic', 'hall', 'kitchen'].map((room) => {
      const last = sent.filter((s) => s.room === room).sort((a, b) => b.at - a.at)[0]
      return [room, last.at, last.celsius]
    }))

    assert.deepEqual(await run('Readings in range'), [{ readings: String(sent.length) }])
    assert.equal(dashboard.panels.length, 3, 'every panel is checked above')
  })
})
