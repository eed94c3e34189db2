// The write-ahead log (engine/durability/wal.ts) on a real directory: what is appended and not
// settled comes back on open, in order and byte for byte; settled segments go; a torn tail is
// skipped and said; a full log holds appends until settling frees room, and loses none of them.
import assert from 'node:assert/strict'
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { WriteAheadLog, type WalOptions } from '../../engine/durability/wal.js'
import { encodeMessage, type LoggedMessage } from '../../engine/durability/wal-record.js'
import { tempDir } from '../helpers/signalbox.js'

const silent = pino({ level: 'silent' })

function message (n: number, bytes = 20): LoggedMessage {
  return { topic: `sensors/room-${n}/t`, payload: Buffer.alloc(bytes, n % 256), qos: n % 2 === 0 ? 1 : 2, retain: n % 3 === 0, clientId: n % 5 === 0 ? null : `client-${n}`, receivedAt: 1_700_000_000_000 + n }
}

function options (dir: string, more: Partial<WalOptions> = {}): WalOptions {
  return { dir, sync: 'process', maxBytes: 64 * 1024 * 1024, logger: silent, ...more }
}

function segments (dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.wal')).sort()
}

describe('write-ahead log', () => {
  it('gives back every unsettled message on open, oldest first, byte for byte; settled ones do not come back', async () => {
    const dir = tempDir()
    const first = await WriteAheadLog.open(options(dir))
    assert.deepEqual(first.unsettled, [])
    const ids = await Promise.all(Array.from({ length: 1000 }, async (_, n) => await first.wal.append(message(n))))
    assert.deepEqual(ids, ids.slice().sort((a, b) => a - b))
    for (const id of ids.filter((_, n) => n % 4 === 0)) first.wal.settle(id)
    await first.wal.close()
    const second = await WriteAheadLog.open(options(dir))
    const expected = ids.map((id, n) => ({ id, message: message(n) })).filter((_, n) => n % 4 !== 0)
    assert.deepEqual(second.unsettled, expected)
    assert.equal(second.wal.snapshot().unsettled, 750)
    // New ids continue after the old ones, so an id never means two messages.
    assert.ok(await second.wal.append(message(1)) > ids[ids.length - 1])
    await second.wal.close()
  })

  it('deletes segments once every message in them and before them is settled', async () => {
    const dir = tempDir()
    const first = await WriteAheadLog.open(options(dir, { segmentBytes: 4096 }))
    const ids: number[] = []
    for (let n = 0; n < 400; n++) ids.push(await first.wal.append(message(n, 100)))
    assert.ok(segments(dir).length > 5, `${segments(dir).length} segments`)
    // Settling all but the first keeps every segment: the oldest still holds an unsettled message.
    for (const id of ids.slice(1)) first.wal.settle(id)
    await first.wal.close()
    const kept = segments(dir).length
    assert.ok(kept > 5, `${kept} segments kept while the first message is unsettled`)
    const second = await WriteAheadLog.open(options(dir, { segmentBytes: 4096 }))
    assert.deepEqual(second.unsettled.map((u) => u.id), [ids[0]])
    second.wal.settle(ids[0])
    await second.wal.append(message(400))
    await second.wal.close()
    assert.equal(segments(dir).length, 1, 'only the segment holding the newest message is left')
    const third = await WriteAheadLog.open(options(dir))
    assert.deepEqual(third.unsettled.map((u) => u.message), [message(400)])
    await third.wal.close()
  })

  it('skips a torn last record (cut short by a crash) with a warning, and replays the rest', async () => {
    const dir = tempDir()
    const { wal } = await WriteAheadLog.open(options(dir))
    for (let n = 0; n < 10; n++) await wal.append(message(n))
    await wal.close()
    const last = join(dir, segments(dir).at(-1)!)
    const torn = encodeMessage(99, message(99))
    appendFileSync(last, torn.subarray(0, torn.length - 3))
    const warnings: string[] = []
    const logger = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(line) } })
    const reopened = await WriteAheadLog.open(options(dir, { logger }))
    assert.deepEqual(reopened.unsettled.map((u) => u.message), Array.from({ length: 10 }, (_, n) => message(n)))
    assert.equal(reopened.wal.snapshot().tornRecords, 1)
    assert.equal(warnings.length, 1)
    assert.match(warnings[0], /cut short or corrupt/)
    await reopened.wal.close()
    // Cut off: the next open finds nothing torn.
    const again = await WriteAheadLog.open(options(dir))
    assert.equal(again.wal.snapshot().tornRecords, 0)
    assert.equal(again.unsettled.length, 10)
    await again.wal.close()
  })

  it('skips a record whose bytes were changed (checksum), and what follows it in that segment', async () => {
    const dir = tempDir()
    const { wal } = await WriteAheadLog.open(options(dir))
    for (let n = 0; n < 3; n++) await wal.append(message(n))
    await wal.close()
    const file = join(dir, segments(dir).at(-1)!)
    const bytes = readFileSync(file)
    const second = encodeMessage(2, message(1)).length + encodeMessage(1, message(0)).length - 5
    bytes[second] ^= 0xff
    writeFileSync(file, bytes)
    const reopened = await WriteAheadLog.open(options(dir))
    assert.deepEqual(reopened.unsettled.map((u) => u.message), [message(0)])
    assert.equal(reopened.wal.snapshot().tornRecords, 1)
    await reopened.wal.close()
  })

  it('when full, holds appends (none resolves) until settling frees room; then all are written, none lost', async () => {
    const dir = tempDir()
    const { wal } = await WriteAheadLog.open(options(dir, { maxBytes: 64 * 1024, segmentBytes: 8 * 1024 }))
    const resolved = new Set<number>()
    const appends = Array.from({ length: 400 }, async (_, n) => { const id = await wal.append(message(n, 200)); resolved.add(n); return id })
    // Room is decided when append is called: about 250 of these 260-byte records fit in 64 KiB.
    const held = wal.snapshot().waitingForRoom
    assert.ok(held > 100 && held < 200, `${held} held`)
    assert.ok(wal.full())
    const admitted = await Promise.all(appends.slice(0, 400 - held))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(resolved.size, 400 - held, 'no held append resolved while the log is full')
    for (const id of admitted) wal.settle(id)
    const ids = await Promise.all(appends)
    assert.equal(resolved.size, 400)
    assert.equal(wal.full(), false)
    assert.equal(wal.snapshot().heldForRoom, held)
    await wal.close()
    assert.ok(segments(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0) <= 64 * 1024)
    const reopened = await WriteAheadLog.open(options(dir))
    assert.deepEqual(reopened.unsettled.map((u) => u.id), ids.slice(400 - held))
    assert.deepEqual(reopened.unsettled.map((u) => u.message), Array.from({ length: held }, (_, n) => message(400 - held + n, 200)))
    await reopened.wal.close()
  })
})
