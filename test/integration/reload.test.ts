// Hot reload on a real embedded broker with real file watching: zero loss under load, broken saves
// keep the old rules, rename-style saves, a directory gaining and losing files, and sink diffing.
import assert from 'node:assert/strict'
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { until } from '../helpers/latch.js'
import { connect, subscribe } from '../helpers/mqtt.js'
import { startSignalbox, type RunningSignalbox } from '../helpers/signalbox.js'

/** Rewrites the rules file and waits until the reloader has finished with it (success or failure). */
async function rewrite (sb: RunningSignalbox, text: string, file = sb.file): Promise<void> {
  const stats = sb.service.reloader.stats
  const before = stats.successes + stats.failures
  writeFileSync(file, text)
  await until(() => stats.successes + stats.failures > before, 10_000, `reload after writing ${file}`)
}

function counting (version: number): string {
  return `version: 1
sinks:
  out: { type: file, path: out.jsonl }
rules:
  - name: count
    from: load/+seq
    set:
      seq: { var: params.seq }
      v: ${version}
    to:
      - sink: out
`
}

/** Publishes n QoS 0 messages, yielding to the event loop between chunks so the broker and watcher keep running. */
async function publishRange (pub: MqttClient, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i++) {
    pub.publish(`load/${i}`, '')
    if (i % 250 === 249) await new Promise((resolve) => setImmediate(resolve))
  }
}

function echo (version: string): string {
  return `version: 1
rules:
  - name: echo
    from: in/+id
    set: { v: "${version}" }
    to:
      - mqtt: out/{id}
`
}

describe('hot reload', function () {
  this.timeout(120_000)

  it('loses nothing: 50,000 messages while the rules are rewritten 20 times (2 broken), each message handled exactly once', async () => {
    const sb = await startSignalbox(counting(0), { watch: true })
    const pub = await connect(sb.port)
    const total = 50_000
    const step = total / 20
    for (let k = 1; k <= 20; k++) {
      await publishRange(pub, (k - 1) * step, step)
      // Versions 7 and 14 are broken: the previous rules must keep handling every message.
      const text = k === 7 ? counting(k).replace('from: load/+seq', 'from: load/#/seq') : k === 14 ? counting(k) + '  - name: [unclosed\n' : counting(k)
      writeFileSync(sb.file, text)
      await until(() => sb.service.reloader.stats.successes + sb.service.reloader.stats.failures >= k, 10_000, `reload ${k}`)
    }
    const counters = sb.engine.ruleCountersFor('count')!
    await until(() => counters.matched === total, 30_000, `${total} messages matched (have ${counters.matched})`)
    const sink = sb.sinks.get('out')!
    assert.equal(await sink.flush(20_000), true)

    // One reload per save (a file system may report a save twice, so at least).
    const stats = sb.service.reloader.stats
    assert.ok(stats.successes >= 18 && stats.failures >= 2 && stats.lastError === undefined, JSON.stringify(stats))
    const lines = readFileSync(join(sb.dir, 'out.jsonl'), 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as { payload: { seq: string, v: number } }).payload)
    assert.equal(lines.length, total)
    const bySeq = new Map<number, number>()
    for (const { seq, v } of lines) {
      assert.ok(!bySeq.has(Number(seq)), `message ${seq} handled twice`)
      bySeq.set(Number(seq), v)
    }
    for (let i = 0; i < total; i++) assert.ok(bySeq.has(i), `message ${i} missing`)
    // One publisher, in order: versions never go back, and the broken ones (7, 14) never ran.
    let last = 0
    for (let i = 0; i < total; i++) {
      const v = bySeq.get(i)!
      assert.ok(v >= last, `message ${i} ran under version ${v} after version ${last}`)
      last = v
    }
    const versions = new Set(bySeq.values())
    assert.ok(!versions.has(7) && !versions.has(14), 'a broken rule set never runs')
    assert.ok(versions.size >= 10, `reloads landed mid-stream (versions seen: ${[...versions].join(', ')})`)
    assert.equal(sink.counters().delivered, total)
  })

  it('keeps the old rules when a save is broken, names file:line:col, and recovers on the next good save', async () => {
    const sb = await startSignalbox(echo('one'), { watch: true })
    const out = await subscribe(sb.port, ['out/#'])
    const pub = await connect(sb.port)
    pub.publish('in/1', '')
    await out.wait(1)
    await rewrite(sb, echo('two').replace('mqtt: out/{id}', 'mqtt: out/{idd}'))
    const stats = sb.service.reloader.stats
    assert.equal(stats.failures, 1)
    assert.match(stats.lastError ?? '', /rules\.yaml:7:\d+ UNKNOWN_CAPTURE/)
    pub.publish('in/2', '')
    await out.wait(2)
    await rewrite(sb, echo('three'))
    assert.equal(stats.lastError, undefined)
    pub.publish('in/3', '')
    const got = await out.wait(3)
    assert.deepEqual(got.map((m) => `${m.topic} ${m.payload}`), ['out/1 {"v":"one"}', 'out/2 {"v":"one"}', 'out/3 {"v":"three"}'])
  })

  it('keeps the traffic moving while a large file loads: messages are delivered while it is read and compiled, by the old rules', async () => {
    const sb = await startSignalbox(echo('one'), { watch: true })
    const sub = await connect(sb.port)
    const pub = await connect(sb.port)
    // 5,000 rules on other topics, and the echo rule at the end: about a second of parsing and
    // compiling, which used to run as one step of the event loop (nothing delivered until it ended).
    const others = Array.from({ length: 5000 }, (_, i) => `  - name: other-${i}\n    from: sensors/${i}/+room\n    where: { ">": [{ var: payload.v }, ${i}] }\n    to: [{ mqtt: "alerts/{room}/${i}" }]\n`).join('')
    const stats = sb.service.reloader.stats
    const whileLoading: string[] = []
    let received = 0
    sub.on('message', (_topic, payload) => {
      received++
      if (stats.loading) whileLoading.push(payload.toString())
    })
    await sub.subscribeAsync('out/#', { qos: 0 })
    let n = 0
    const stream = setInterval(() => { pub.publish(`in/${n++}`, '') }, 5)
    try {
      await until(() => received >= 5, 5000, 'the stream')
      await rewrite(sb, echo('two').replace('rules:\n', `rules:\n${others}`))
      assert.equal(stats.lastError, undefined)
      assert.equal(sb.engine.ruleSet.rules.length, 5001)
    } finally {
      clearInterval(stream)
    }
    // With the loader on the event loop this was 0: the loop was busy for the whole read and compile.
    assert.ok(whileLoading.length >= 10, `${whileLoading.length} messages delivered while the rules were loading`)
    assert.ok(whileLoading.every((p) => p === '{"v":"one"}'), 'each by the old rules')
  })

  it('follows an editor that saves by writing a temporary file and renaming it over the rules file', async () => {
    const sb = await startSignalbox(echo('one'), { watch: true })
    const out = await subscribe(sb.port, ['out/#'])
    const pub = await connect(sb.port)
    const before = sb.service.reloader.stats.successes
    const temp = join(sb.dir, '.rules.yaml.swp')
    writeFileSync(temp, echo('renamed'))
    renameSync(temp, sb.file)
    await until(() => sb.service.reloader.stats.successes > before, 10_000, 'reload after a rename')
    pub.publish('in/1', '')
    assert.deepEqual((await out.wait(1)).map((m) => m.payload), ['{"v":"renamed"}'])
  })

  it('loads a file added to a watched directory, and drops the rules of a removed one', async () => {
    const sb = await startSignalbox(echo('one'), { watch: true, directory: true })
    const out = await subscribe(sb.port, ['out/#', 'extra/#'])
    const pub = await connect(sb.port)
    const extra = join(sb.file, '..', 'extra.yml')
    await rewrite(sb, 'version: 1\nrules:\n  - name: extra\n    from: in/+id\n    to: [{ mqtt: "extra/{id}" }]\n', extra)
    pub.publish('in/1', '')
    await out.wait(2)
    const stats = sb.service.reloader.stats
    const before = stats.successes
    unlinkSync(sb.file)
    await until(() => stats.successes > before, 10_000, 'reload after a removal')
    pub.publish('in/2', '')
    const got = await out.wait(3)
    assert.deepEqual(got.map((m) => m.topic).sort(), ['extra/1', 'extra/2', 'out/1'])
    assert.deepEqual(sb.engine.ruleSet.rules.map((r) => r.name), ['extra'])
  })

  it('keeps an unchanged sink (same object, same queue) across a reload, replaces a changed one and drains a removed one', async () => {
    const sinks = (path: string): string => `version: 1
sinks:
  kept: { type: file, path: kept.jsonl }
  changed: { type: file, path: ${path} }
rules:
  - name: both
    from: in/+id
    to: [{ sink: kept }, { sink: changed }]
`
    const sb = await startSignalbox(sinks('a.jsonl'), { watch: true })
    const pub = await connect(sb.port)
    pub.publish('in/1', '{}')
    const kept = sb.sinks.get('kept')!
    const changed = sb.sinks.get('changed')!
    await until(() => kept.counters().delivered === 1 && changed.counters().delivered === 1, 5000, 'first message written')

    await rewrite(sb, sinks('b.jsonl').replace('name: both', 'name: both-renamed'))
    assert.equal(sb.sinks.get('kept'), kept, 'the unchanged sink is the same object')
    assert.notEqual(sb.sinks.get('changed'), changed, 'a changed sink is a new one')
    await until(() => changed.health().state === 'closed', 5000, 'the replaced sink closed')

    await rewrite(sb, 'version: 1\nsinks:\n  changed: { type: file, path: b.jsonl }\nrules:\n  - name: one\n    from: in/+id\n    to: [{ sink: changed }]\n')
    await until(() => kept.health().state === 'closed', 5000, 'the removed sink drained and closed')
    pub.publish('in/2', '{}')
    await until(() => sb.sinks.get('changed')!.counters().delivered === 1, 5000, 'second message written')
    assert.equal(kept.counters().delivered, 1)
    assert.equal(readFileSync(join(sb.dir, 'a.jsonl'), 'utf8').split('\n').length - 1, 1)
    assert.equal(readFileSync(join(sb.dir, 'b.jsonl'), 'utf8').split('\n').length - 1, 1)
  })
})
