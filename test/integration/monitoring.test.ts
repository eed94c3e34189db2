// Monitoring: /metrics after known traffic shows exact counts; /readyz follows a NATS sink's
// server going away and coming back; $SYS/signalbox reports; --http through the CLI.
import assert from 'node:assert/strict'
import { until } from '../helpers/latch.js'
import { connect, subscribe } from '../helpers/mqtt.js'
import { startNatsServer } from '../helpers/servers.js'
import { startSignalbox } from '../helpers/signalbox.js'
import { startRun } from '../helpers/cli.js'
import { runCli } from '../helpers/process.js'
import { monitoringUrl, parseMetrics } from '../helpers/metrics.js'

const RULES = `
version: 1
rules:
  - name: hot
    from: sensors/+room/temperature
    where: { ">": [{ var: payload.celsius }, 30] }
    set: { room: { var: params.room }, celsius: { var: payload.celsius } }
    to:
      - mqtt: alerts/{room}/hot
  - name: doors
    from: doors/#
    to:
      - mqtt: log/doors
`

async function get (port: number, path: string): Promise<{ status: number, body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`)
  return { status: res.status, body: await res.text() }
}

describe('monitoring', function () {
  this.timeout(30_000)

  it('serves /metrics whose counters are exact after known traffic', async () => {
    const sb = await startSignalbox(RULES, { settings: { http: { host: '127.0.0.1', port: 0 } } })
    const port = sb.service.http!.port
    const alerts = await subscribe(sb.port, ['alerts/#', 'log/#', '$signalbox/dead-letter/#'])
    const client = await connect(sb.port)
    // 10 temperatures: 6 hot, 3 not, 1 not JSON; 2 door events; 1 topic no rule matches.
    for (const c of [31, 32, 33, 34, 35, 36, 20, 21, 22]) await client.publishAsync('sensors/kitchen/temperature', JSON.stringify({ celsius: c }), { qos: 1 })
    await client.publishAsync('sensors/kitchen/temperature', 'warm', { qos: 1 })
    await client.publishAsync('doors/front', 'open', { qos: 1 })
    await client.publishAsync('doors/back', 'shut', { qos: 1 })
    await client.publishAsync('nobody/listens', 'x', { qos: 1 })
    await alerts.wait(9, 10_000) // 6 alerts, 2 door logs, 1 dead letter
    // Republishes and dead letters count when aedes calls back, a moment after a subscriber may have them.
    let m = new Map<string, number>()
    await until(async () => {
      m = parseMetrics((await get(port, '/metrics')).body)
      return m.get('signalbox_rule_published_total{rule="doors"}') === 2 && m.get('signalbox_dead_letters_total') === 1 && m.get('signalbox_rule_published_total{rule="hot"}') === 6
    }, 5000, 'republishes and the dead letter counted (6 hot, 2 doors, 1 dead letter)')
    assert.equal(m.get('signalbox_rule_matched_total{rule="hot"}'), 10)
    assert.equal(m.get('signalbox_rule_passed_total{rule="hot"}'), 6)
    assert.equal(m.get('signalbox_rule_filtered_total{rule="hot"}'), 3)
    assert.equal(m.get('signalbox_rule_errors_total{rule="hot"}'), 1)
    assert.equal(m.get('signalbox_rule_dropped_total{rule="hot"}'), 0)
    assert.equal(m.get('signalbox_rule_matched_total{rule="doors"}'), 2)
    assert.equal(m.get('signalbox_broker_messages_in_total'), 13, 'the client published 13')
    // Every message the engine saw was timed: client publishes, derived messages, dead letter, aedes' own $SYS.
    assert.equal(m.get('signalbox_message_processing_seconds_count'), m.get('signalbox_messages_received_total'))
    assert.ok(m.get('signalbox_messages_received_total')! >= 13 + 6 + 2 + 1)
    assert.equal(m.get('signalbox_broker_clients'), 2)
    assert.equal(m.get('signalbox_rules'), 2)
    assert.equal(m.get('signalbox_reloads_total{result="success"}'), 0)
    assert.ok(m.has('signalbox_process_resident_memory_bytes'), 'process metrics are there too')

    assert.deepEqual(await get(port, '/healthz'), { status: 200, body: '{"status":"ok"}\n' })
    assert.deepEqual(await get(port, '/readyz'), { status: 200, body: '{"status":"ready"}\n' })
    assert.equal((await get(port, '/nope')).status, 404)
  })

  it('times deliveries end to end through a sink; reports not ready while its NATS server is down, and ready again when it returns', async () => {
    const nats = await startNatsServer()
    const rules = `
version: 1
sinks:
  bus: { type: nats, servers: "${nats.url}" }
rules:
  - name: to-bus
    from: in/#
    to: [{ sink: bus, subject: out }]
`
    const sb = await startSignalbox(rules, { settings: { http: { host: '127.0.0.1', port: 0 }, readyGraceMs: 0 } })
    const port = sb.service.http!.port
    await until(async () => (await get(port, '/readyz')).status === 200, 10_000, 'ready at first')
    // Three messages through the sink: the end-to-end histogram counts each delivery.
    const client = await connect(sb.port)
    for (let i = 0; i < 3; i++) await client.publishAsync(`in/${i}`, 'x', { qos: 1 })
    await until(async () => parseMetrics((await get(port, '/metrics')).body).get('signalbox_sink_delivery_seconds_count{sink="bus"}') === 3, 10_000, 'three deliveries timed')
    const timed = parseMetrics((await get(port, '/metrics')).body)
    assert.equal(timed.get('signalbox_sink_delivered_total{sink="bus",type="nats"}'), 3)
    assert.equal(timed.get('signalbox_sink_delivery_seconds_bucket{le="+Inf",sink="bus"}'), 3)
    await nats.stop()
    let down = { status: 0, body: '' }
    await until(async () => { down = await get(port, '/readyz'); return down.status === 503 }, 10_000, 'not ready once NATS is gone')
    const body = JSON.parse(down.body) as { status: string, problems: string[] }
    assert.equal(body.status, 'not ready')
    assert.equal(body.problems.length, 1)
    assert.match(body.problems[0], /^sink bus: down for \d+ s/)
    assert.equal(parseMetrics((await get(port, '/metrics')).body).get('signalbox_sink_up{sink="bus",type="nats"}'), 0)
    await nats.start()
    await until(async () => (await get(port, '/readyz')).status === 200, 15_000, 'ready again once NATS is back')
    assert.equal(parseMetrics((await get(port, '/metrics')).body).get('signalbox_sink_up{sink="bus",type="nats"}'), 1)
  })

  it('publishes $SYS/signalbox reports on the embedded broker, retained', async () => {
    const sb = await startSignalbox(RULES, { settings: { sysIntervalS: 1 } })
    const client = await connect(sb.port)
    await client.publishAsync('doors/front', 'open', { qos: 1 })
    await until(() => sb.engine.ruleCountersFor('doors')?.matched === 1, 5000, 'door event handled')
    const reports = await subscribe(sb.port, ['$SYS/signalbox/#'])
    await until(() => reports.items.some((r) => r.topic === '$SYS/signalbox/rules/doors' && (JSON.parse(r.payload) as { matched: number }).matched === 1), 5000, 'a rule report after the event')
    const summary = reports.items.find((r) => r.topic === '$SYS/signalbox/summary')!
    const parsed = JSON.parse(summary.payload) as { rules: number, broker: { messagesIn: number } }
    assert.equal(parsed.rules, 2)
    assert.ok(parsed.broker.messagesIn >= 1)
    // Reports skip the engine: they are signalbox's own, and no rule should count them as input.
    const engineBefore = sb.engine.counters.received
    const summariesBefore = reports.items.filter((r) => r.topic === '$SYS/signalbox/summary').length
    await until(() => reports.items.filter((r) => r.topic === '$SYS/signalbox/summary').length >= summariesBefore + 2, 5000, 'two more summaries')
    // Two rounds are 6 reports; aedes' own $SYS heartbeat (once a minute) may add one.
    assert.ok(sb.engine.counters.received - engineBefore <= 1, `the engine received ${sb.engine.counters.received - engineBefore} messages while reports flowed`)
  })

  it('signalbox run --http 127.0.0.1:0 logs the endpoint it serves; a bad --http is a usage error', async () => {
    const { proc } = await startRun(['--http', '127.0.0.1:0', 'fixtures/rules/home.yaml'])
    const url = await monitoringUrl(proc.stderr)
    const res = await fetch(`${url}/readyz`)
    assert.equal(res.status, 200)
    proc.child.kill('SIGTERM')
    assert.equal(await proc.exited, 0)

    const bad = runCli(['run', '--http', 'nine-one-hundred', 'fixtures/rules/home.yaml'])
    assert.equal(bad.status, 2)
    assert.match(bad.stderr, /--http <host:port>' argument 'nine-one-hundred' is invalid\. give host:port, e\.g\. 127\.0\.0\.1:9100/)
  })
})
