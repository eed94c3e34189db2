import assert from 'node:assert/strict'
import { filterToSubjects } from '../../adapters/sources/nats-source.js'
import { parseHops, redactUrl } from '../../adapters/sources/source.js'
import { sourceUrlProblem } from '../../adapters/sources/sources.js'
import { sourceSettings } from '../../engine/service/config.js'
import { parseHostPort } from '../../engine/service/settings.js'
import { readiness } from '../../engine/observe/readiness.js'
import type { ServiceReport } from '../../engine/observe/report.js'

describe('sources', () => {
  it('turns MQTT filters into NATS subjects; # also covers its parent level', () => {
    assert.deepEqual(filterToSubjects('sensors/+/temperature'), ['sensors.*.temperature'])
    assert.deepEqual(filterToSubjects('sensors/#'), ['sensors', 'sensors.>'])
    assert.deepEqual(filterToSubjects('#'), ['>'])
    assert.deepEqual(filterToSubjects('a/+/#'), ['a.*', 'a.*.>'])
    assert.equal(filterToSubjects('a.b/c'), undefined, 'a level with a dot is no subject token')
    assert.equal(filterToSubjects('a//c'), undefined, 'an empty level is no subject token')
    assert.equal(filterToSubjects('a b/c'), undefined)
  })

  it('reads a hop count, and takes nonsense as 0', () => {
    assert.equal(parseHops('3'), 3)
    assert.equal(parseHops(undefined), 0)
    assert.equal(parseHops('-1'), 0)
    assert.equal(parseHops('1e9'), 0)
    assert.equal(parseHops('99999'), 0)
    assert.equal(parseHops(['2']), 0)
  })

  it('keeps credentials out of a source\'s name, and takes them from the URL', () => {
    assert.equal(redactUrl('mqtt://worker:s3cret@127.0.0.1:1883'), 'mqtt://127.0.0.1:1883')
    const [s] = sourceSettings([{ url: 'mqtt://worker:s%40cret@127.0.0.1:1883' }], 'g')
    assert.equal(s.username, 'worker')
    assert.equal(s.password, 's@cret')
    assert.equal(s.share, 'g')
    assert.equal(s.qos, 1)
    assert.deepEqual(sourceSettings([{ url: 'embedded' }], undefined), [], '`embedded` is the embedded broker, not a source')
  })

  it('refuses source URLs it cannot use, saying what to write', () => {
    assert.equal(sourceUrlProblem('nats://127.0.0.1:4222'), undefined)
    assert.equal(sourceUrlProblem('tls://127.0.0.1:4222'), undefined, 'tls:// is NATS over TLS')
    assert.equal(sourceUrlProblem('mqtts://broker:8883'), undefined)
    assert.match(sourceUrlProblem('http://x')!, /the scheme must be mqtt:\/\/, mqtts:\/\/, ws:\/\/, wss:\/\/, nats:\/\/ or tls:\/\//)
    assert.match(sourceUrlProblem('broker:1883')!, /the scheme must be/)
    assert.match(sourceUrlProblem('not a url')!, /is not a URL/)
  })

  it('parses --http host:port', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:9100'), { host: '127.0.0.1', port: 9100 })
    assert.deepEqual(parseHostPort('[::1]:0'), { host: '::1', port: 0 })
    assert.deepEqual(parseHostPort(':9100'), { host: '127.0.0.1', port: 9100 })
    assert.equal(parseHostPort('9100'), undefined)
    assert.equal(parseHostPort('host:70000'), undefined)
  })
})

describe('readiness', () => {
  const base: ServiceReport = {
    engine: { received: 0, unmatched: 0, deadLettered: 0, hopLimit: 0, replayedOutputs: 0 },
    rules: { r: { matched: 0, passed: 0, filtered: 0, errors: 0, published: 0, dropped: 0 } },
    sinks: {},
    sources: {},
    reloads: { successes: 0, failures: 0, lastError: undefined, lastDurationMs: undefined, loading: false }
  }
  const sink = (state: 'up' | 'down', since: number, depth = 0): ServiceReport['sinks'][string] => ({
    type: 'nats',
    counters: { emitted: 0, queued: 0, delivered: 0, retried: 0, failures: 0, dropped: { queue_full: 0, rejected: 0, shutdown: 0 } },
    health: { state, since, depth, capacity: 10, lastError: state === 'down' ? 'connection refused' : undefined }
  })

  it('is ready with every sink up, and while a sink is down within its grace period with room in its queue', () => {
    assert.deepEqual(readiness({ ...base, sinks: { a: sink('up', 0) } }, { stopping: false, graceMs: 1000, now: 5000 }), { ready: true, problems: [] })
    assert.equal(readiness({ ...base, sinks: { a: sink('down', 4500, 3) } }, { stopping: false, graceMs: 1000, now: 5000 }).ready, true)
  })

  it('is not ready, naming the sink, when it is down past the grace period or its queue is full', () => {
    assert.deepEqual(readiness({ ...base, sinks: { a: sink('down', 1000) } }, { stopping: false, graceMs: 1000, now: 5000 }).problems, ['sink a: down for 4 s: connection refused'])
    assert.deepEqual(readiness({ ...base, sinks: { a: sink('down', 4900, 10) } }, { stopping: false, graceMs: 1000, now: 5000 }).problems, ['sink a: down, queue full (10 of 10): connection refused'])
  })

  it('is not ready while stopping or with no rules', () => {
    assert.deepEqual(readiness({ ...base, rules: {} }, { stopping: true, graceMs: 0, now: 0 }).problems, ['stopping', 'rules: none loaded'])
  })
})
