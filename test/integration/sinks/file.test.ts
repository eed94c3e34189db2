// File sink: the shared contract (a symlink to /dev/full stands in for a full disk), then the
// file-specific promises: many rules into one file without torn lines, rotation, an unwritable path.
import assert from 'node:assert/strict'
import { existsSync, lstatSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { fileSinkType } from '../../../adapters/sinks/file.js'
import type { Sink } from '../../../adapters/sink.js'
import { until } from '../../helpers/latch.js'
import { connect, subscribe } from '../../helpers/mqtt.js'
import { assertAccounted, delivery, describeSinkContract } from '../../helpers/sink-contract.js'
import { startSignalbox, tempDir } from '../../helpers/signalbox.js'
import { onTeardown } from '../../helpers/teardown.js'

const silent = pino({ level: 'silent' })

function fileSink (options: Record<string, unknown>): Sink {
  const sink = fileSinkType.create({ name: 'file-test', type: 'file', options, baseDir: '/', declaredAt: 'test', implicit: false }, { logger: silent })
  onTeardown(async () => await sink.close(0))
  return sink
}

/** JSON Lines records of the regular files among `paths`, in order; a torn line fails the parse. */
function readRecords (paths: string[]): Array<Record<string, unknown>> {
  const records: Array<Record<string, unknown>> = []
  for (const path of paths) {
    if (!existsSync(path) || lstatSync(path).isSymbolicLink()) continue
    const text = readFileSync(path, 'utf8')
    if (text === '') continue
    assert.ok(text.endsWith('\n'), `${path} ends in a partial line`)
    for (const line of text.slice(0, -1).split('\n')) records.push(JSON.parse(line) as Record<string, unknown>)
  }
  return records
}

describeSinkContract('file', async () => {
  const dir = tempDir()
  const path = join(dir, 'out.jsonl')
  const before = join(dir, 'out.before.jsonl')
  return {
    address: path,
    create: (queueSize) => fileSink({ queue_size: queueSize }),
    received: async (count, ms = 10_000) => {
      let payloads: string[] = []
      await until(() => {
        payloads = readRecords([before, path]).map((r) => JSON.stringify(r.payload))
        return payloads.length >= count
      }, ms, `${count} lines in ${path}`)
      return payloads
    },
    down: async () => {
      // Writes to /dev/full fail with ENOSPC, as on a full disk; the sink notices the path changed.
      if (existsSync(path)) renameSync(path, before)
      symlinkSync('/dev/full', path)
    },
    up: async () => { unlinkSync(path) }
  }
})

describe('file sink', function () {
  this.timeout(60_000)

  it('writes 10,000 messages from 4 rules into one file: every line parses, none missing', async () => {
    const rules = [0, 1, 2, 3].map((n) => `
  - name: writer-${n}
    from: load/${n}/+id
    set:
      n: ${n}
      id: { var: params.id }
    to:
      - file: out/all.jsonl`).join('')
    const sb = await startSignalbox(`version: 1\nrules:${rules}\n`)
    const pub = await connect(sb.port)
    for (let i = 0; i < 2500; i++) {
      for (let n = 0; n < 4; n++) pub.publish(`load/${n}/${i}`, 'x')
    }
    const sink = sb.sinks.get('file')!
    await until(() => sink.counters().emitted === 10_000, 30_000, '10,000 messages emitted')
    assert.equal(await sink.flush(30_000), true)
    const records = readRecords([join(sb.dir, 'out', 'all.jsonl')])
    assert.equal(records.length, 10_000)
    const seen = new Set(records.map((r) => `${String(r.rule)}:${JSON.stringify(r.payload)}`))
    assert.equal(seen.size, 10_000, 'no duplicates')
    for (let n = 0; n < 4; n++) {
      for (let i = 0; i < 2500; i++) assert.ok(seen.has(`writer-${n}:${JSON.stringify({ n, id: String(i) })}`), `writer-${n} message ${i} missing`)
    }
    const first = records[0]
    assert.match(String(first.time), /^\d{4}-\d\d-\d\dT/)
    assert.match(String(first.topic), /^load\/\d\/\d+$/)
    assert.equal(sink.counters().delivered, 10_000)
    assertAccounted(sink)
  })

  it('rotates by size, keeping whole lines and the newest files', async () => {
    const dir = tempDir()
    const path = join(dir, 'rot.jsonl')
    const sink = fileSink({ max_bytes: 4096, keep: 3 })
    await sink.start()
    for (let i = 1; i <= 1000; i++) sink.send(delivery(path, i))
    assert.equal(await sink.flush(20_000), true)
    const files = readdirSync(dir).sort()
    assert.deepEqual(files, ['rot.jsonl', 'rot.jsonl.1', 'rot.jsonl.2', 'rot.jsonl.3'])
    for (const f of files) assert.ok(statSync(join(dir, f)).size <= 4096, `${f} is larger than max_bytes`)
    // Oldest first: .3, .2, .1, then the live file; together a contiguous run ending at the last message.
    const kept = readRecords([`${path}.3`, `${path}.2`, `${path}.1`, path]).map((r) => (r.payload as { seq: number }).seq)
    assert.equal(kept[kept.length - 1], 1000)
    kept.forEach((seq, i) => { if (i > 0) assert.equal(seq, kept[i - 1] + 1, 'kept lines are contiguous') })
    assert.equal(sink.counters().delivered, 1000)
    assertAccounted(sink)
  })

  it('keeps 5 rotated files when `keep` is not given (the schema\'s default reaches the sink)', async () => {
    const dir = tempDir()
    const path = join(dir, 'rot.jsonl')
    const sink = fileSink({ max_bytes: 1024 })
    await sink.start()
    for (let i = 1; i <= 500; i++) sink.send(delivery(path, i))
    assert.equal(await sink.flush(20_000), true)
    assert.deepEqual(readdirSync(dir).sort(), ['rot.jsonl', 'rot.jsonl.1', 'rot.jsonl.2', 'rot.jsonl.3', 'rot.jsonl.4', 'rot.jsonl.5'])
    assertAccounted(sink)
  })

  it('counts an unwritable path as rejected, and the engine keeps running', async () => {
    const sb = await startSignalbox(`version: 1
rules:
  - name: archive
    from: archive/+room
    to:
      - file: "{room}/log.jsonl"
`)
    // A regular file where a directory should be: mkdir fails with ENOTDIR/EEXIST, even as root.
    writeFileSync(join(sb.dir, 'blocked'), 'not a directory')
    const pub = await connect(sb.port)
    pub.publish('archive/blocked', '{"n":1}')
    pub.publish('archive/blocked', '{"n":2}')
    pub.publish('archive/fine', '{"n":3}')
    const sink = sb.sinks.get('file')!
    await until(() => sink.counters().emitted === 3, 5000, 'three outputs')
    assert.equal(await sink.flush(5000), true)
    const c = sink.counters()
    assert.equal(c.dropped.rejected, 2)
    assert.equal(c.delivered, 1)
    assert.match(sink.health().lastDrop ?? '', /^rejected: cannot write .*blocked\/log\.jsonl/)
    assert.deepEqual(readRecords([join(sb.dir, 'fine', 'log.jsonl')]).map((r) => r.payload), [{ n: 3 }])
    assertAccounted(sink)
  })

  it('fills {date} and captures into the path, and refuses a capture that would climb out (..)', async () => {
    const sb = await startSignalbox(`version: 1
sinks:
  raw:
    type: file
    path: "data/{room}/{date}.log"
    format: raw
rules:
  - name: raw-log
    from: raw/+room
    to:
      - sink: raw
`)
    const dead = await subscribe(sb.port, ['$signalbox/dead-letter/#'])
    const pub = await connect(sb.port)
    pub.publish('raw/kitchen', 'plain text')
    pub.publish('raw/..', 'escape attempt')
    const [letter] = await dead.wait(1)
    assert.match(JSON.parse(letter.payload).reason as string, /would make a path segment '\.\.'/)
    const sink = sb.sinks.get('raw')!
    await until(() => sink.counters().emitted === 1, 5000, 'one output')
    assert.equal(await sink.flush(5000), true)
    const day = new Date().toISOString().slice(0, 10)
    assert.equal(readFileSync(join(sb.dir, 'data', 'kitchen', `${day}.log`), 'utf8'), 'plain text\n')
    assert.equal(sb.engine.ruleCountersFor('raw-log')!.dropped, 1)
  })
})
