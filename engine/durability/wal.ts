/**
 * The write-ahead log: every QoS ≥ 1 message a rule will handle is appended here before the
 * publisher gets its PUBACK, and settled once every output it produced is delivered or counted as
 * dropped. On start, what is not settled is handed back to be handled again. A directory of
 * segment files, appended to in batches (one write, and with `power` one fdatasync, for all the
 * records of a turn: group commit); a segment goes once every message in it, and in every older
 * one, is settled. The log's size is bounded: when it is full, appends wait (so acks are held)
 * until settling frees a segment.
 */
import { mkdirSync, readdirSync, readFileSync, truncateSync, writeSync } from 'node:fs'
import { open, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../observe/logger.js'
import { decodeRecords, encodeMessage, encodeSettled, type LoggedMessage } from './wal-record.js'

/** `process`: written to the OS before the ack (survives the process); `power`: and synced to disk. */
export type WalSync = 'process' | 'power'

export interface WalOptions {
  dir: string
  sync: WalSync
  /** Most bytes the segments may hold; past it, appends wait for settling. */
  maxBytes: number
  /** Bytes after which a new segment starts. Default: an eighth of maxBytes, within 64 KiB–16 MiB. */
  segmentBytes?: number
  logger: Logger
}

export interface WalStats {
  /** Bytes in the segments on disk. */
  bytes: number
  segments: number
  /** Messages appended and not yet settled. */
  unsettled: number
  /** Arrival time of the oldest unsettled message (ms since the epoch), if any. */
  oldestUnsettledAt: number | undefined
  appended: number
  settled: number
  /** Batches written (each one write, and with `power` one fdatasync). */
  writes: number
  /** Appends waiting for room (their publishers' acks held) right now, and in all. */
  waitingForRoom: number
  heldForRoom: number
  /** Records found cut short or corrupt when the log was opened (skipped). */
  tornRecords: number
}

/** An unsettled message found when the log was opened: to be handled again. */
export interface Unsettled {
  id: number
  message: LoggedMessage
}

interface Segment {
  seq: number
  path: string
  bytes: number
  /** Messages in this segment not yet settled. */
  unsettled: number
}

interface Pending {
  record: Buffer
  id: number
  done: Appended
}

/** Told when an append is written (err undefined) or refused. */
export type Appended = (err: Error | undefined, id: number) => void

const SEGMENT_NAME = /^segment-(\d{12})\.wal$/
const MIN_SEGMENT_BYTES = 64 * 1024
/** Longest a settlement waits to be written when no append comes to carry it. */
const SETTLE_WRITE_MS = 100
const MAX_SEGMENT_BYTES = 16 * 1024 * 1024

/** writeSync until every byte is written (a regular file takes them all unless the disk is full: then it throws). */
function writeAll (fd: number, bytes: Buffer): void {
  let done = 0
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done)
}

function segmentName (seq: number): string {
  return `segment-${String(seq).padStart(12, '0')}.wal`
}

export class WriteAheadLog {
  private readonly segments: Segment[] = []
  private current!: Segment
  private handle!: FileHandle
  /** Unsettled ids (in id order, which is arrival order) with their segment and arrival time. */
  private readonly unsettledIds = new Map<number, { segment: Segment | undefined, at: number }>()
  private pending: Pending[] = []
  private pendingBytes = 0
  /** Bytes in the segments on disk (kept, not summed per append). */
  private diskBytes = 0
  /** Appends beyond the size bound, in order, admitted as settling frees room. */
  private waiting: Pending[] = []
  private settledIds: number[] = []
  private flushing: Promise<void> | undefined
  private scheduled = false
  /** A full log whose current segment is all settled asks for a new one, so the current one can go. */
  private rotateRequested = false
  private settleTimer: NodeJS.Timeout | undefined
  private closed = false
  private failure: Error | undefined
  private readonly segmentBytes: number
  private readonly stats = { appended: 0, settled: 0, writes: 0, heldForRoom: 0, tornRecords: 0 }

  private constructor (private readonly options: WalOptions, private nextId: number) {
    this.segmentBytes = options.segmentBytes ?? Math.min(MAX_SEGMENT_BYTES, Math.max(MIN_SEGMENT_BYTES, Math.floor(options.maxBytes / 8)))
  }

  /** Opens (or creates) the log in `dir`; returns it with the messages to handle again, oldest first. */
  static async open (options: WalOptions): Promise<{ wal: WriteAheadLog, unsettled: Unsettled[] }> {
    mkdirSync(options.dir, { recursive: true })
    const files = readdirSync(options.dir).flatMap((name) => {
      const m = SEGMENT_NAME.exec(name)
      return m === null ? [] : [{ seq: Number(m[1]), path: join(options.dir, name) }]
    }).sort((a, b) => a.seq - b.seq)
    const messages = new Map<number, { message: LoggedMessage, segment: Segment }>()
    const segments: Segment[] = []
    let torn = 0
    let lastId = 0
    for (const f of files) {
      const bytes = readFileSync(f.path)
      const read = decodeRecords(bytes)
      const segment: Segment = { seq: f.seq, path: f.path, bytes: read.end, unsettled: 0 }
      if (read.torn) {
        torn++
        options.logger.warn({ file: f.path, at: read.end, skipped: bytes.length - read.end }, 'write-ahead log: a record cut short or corrupt (a crash mid-write); it and what follows it in this segment are skipped')
        // Cut it off, so the next start does not report it again.
        truncateSync(f.path, read.end)
      }
      for (const r of read.records) {
        if (r.kind === 'message') {
          messages.set(r.id, { message: r.message, segment })
          lastId = Math.max(lastId, r.id)
        } else {
          for (const id of r.ids) messages.delete(id)
        }
      }
      segments.push(segment)
    }
    const wal = new WriteAheadLog(options, lastId + 1)
    wal.stats.tornRecords = torn
    const unsettled = [...messages.entries()].sort((a, b) => a[0] - b[0]).map(([id, { message, segment }]) => {
      segment.unsettled++
      wal.unsettledIds.set(id, { segment, at: message.receivedAt })
      return { id, message }
    })
    wal.segments.push(...segments)
    wal.diskBytes = segments.reduce((n, s) => n + s.bytes, 0)
    await wal.startSegment((segments.at(-1)?.seq ?? 0) + 1)
    await wal.collect()
    return { wal, unsettled }
  }

  /**
   * Appends a message; resolves with its id once it is written (and, with `power`, synced). While
   * the log is full, it waits for room: the caller holds the publisher's ack meanwhile.
   */
  append (message: LoggedMessage): Promise<number> {
    return new Promise((resolve, reject) => { this.appendThen(message, (err, id) => { if (err === undefined) resolve(id); else reject(err) }) })
  }

  /** `append` with a callback: the broker's path, one call per publish and no promise. */
  appendThen (message: LoggedMessage, done: Appended): void {
    const refused = this.closed ? new Error('the write-ahead log is closed') : this.failure
    if (refused !== undefined) { queueMicrotask(() => done(refused, 0)); return }
    const id = this.nextId++
    const p: Pending = { record: encodeMessage(id, message), id, done }
    // Its segment is known once it is written (writeBatch); until then it is counted in none.
    this.unsettledIds.set(id, { segment: undefined, at: message.receivedAt })
    if (this.waiting.length > 0 || !this.hasRoomFor(p.record.length)) {
      this.waiting.push(p)
      this.stats.heldForRoom++
      if (this.waiting.length === 1) this.options.logger.warn({ maxBytes: this.options.maxBytes, unsettled: this.unsettledIds.size }, 'write-ahead log full: holding publishers\' acks until outputs are delivered')
      this.rotateIfSettled()
      return
    }
    this.enqueue(p)
  }

  /** Settles a message: every output it produced is delivered or counted. */
  settle (id: number): void {
    const entry = this.unsettledIds.get(id)
    if (entry === undefined) return
    this.unsettledIds.delete(id)
    this.stats.settled++
    this.settledIds.push(id)
    if (entry.segment !== undefined) entry.segment.unsettled--
    // Settlements ride along with the next appends, or go within SETTLE_WRITE_MS: losing the last
    // few to a crash only means those messages are handled again. A full log writes (and frees) at once.
    if (this.waiting.length > 0) this.schedule()
    else this.settleTimer ??= setTimeout(() => { this.settleTimer = undefined; this.schedule() }, SETTLE_WRITE_MS).unref()
  }

  /** Whether the log holds acks for want of room. */
  full (): boolean {
    return this.waiting.length > 0
  }

  snapshot (): WalStats {
    const oldest = this.unsettledIds.values().next()
    return {
      bytes: this.diskBytes,
      segments: this.segments.length,
      unsettled: this.unsettledIds.size,
      oldestUnsettledAt: oldest.done === true ? undefined : oldest.value.at,
      appended: this.stats.appended,
      settled: this.stats.settled,
      writes: this.stats.writes,
      waitingForRoom: this.waiting.length,
      heldForRoom: this.stats.heldForRoom,
      tornRecords: this.stats.tornRecords
    }
  }

  /** Writes what is pending (settlements included) and closes the segment; appends waiting for room are refused. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.settleTimer)
    this.settleTimer = undefined
    for (const p of this.waiting) this.refuse(p, new Error('the write-ahead log is closed'))
    this.waiting = []
    await this.flush()
    await this.handle.close()
  }

  /** Not written, so nothing to settle: it is forgotten. */
  private refuse (p: Pending, err: Error): void {
    this.unsettledIds.delete(p.id)
    p.done(err, p.id)
  }

  private hasRoomFor (bytes: number): boolean {
    const used = this.diskBytes + this.pendingBytes
    // An empty log takes any record, so one larger than the bound cannot wait for ever.
    return used + bytes <= this.options.maxBytes || (used === 0)
  }

  private enqueue (p: Pending): void {
    this.pending.push(p)
    this.pendingBytes += p.record.length
    this.schedule()
  }

  /**
   * One write for everything appended and settled meanwhile. With `process`, at the end of the
   * current task, written in place: a write into the page cache takes microseconds, and the acks
   * then go out without waiting a turn. With `power`, on the next turn: the write and its fdatasync
   * run on the thread pool, never on the broker's thread.
   */
  private schedule (): void {
    if (this.scheduled) return
    this.scheduled = true
    const run = (): void => {
      this.scheduled = false
      this.flush().catch((err: Error) => this.fail(err))
    }
    if (this.options.sync === 'process') queueMicrotask(run)
    else setImmediate(run)
  }

  private async flush (): Promise<void> {
    while (this.flushing !== undefined) await this.flushing
    if (this.pending.length === 0 && this.settledIds.length === 0 && !this.rotateRequested) return
    // Writes and rotations take turns: a segment is never closed under a write.
    this.flushing = this.rotateRequested ? this.rotate() : this.writeBatch()
    try {
      await this.flushing
    } finally {
      this.flushing = undefined
    }
    // What arrived during the write goes in the next one.
    if (this.pending.length > 0 || this.settledIds.length > 0 || this.rotateRequested) this.schedule()
  }

  private async writeBatch (): Promise<void> {
    const batch = this.pending
    const settled = this.settledIds
    this.pending = []
    this.settledIds = []
    const parts = batch.map((p) => p.record)
    if (settled.length > 0) parts.push(encodeSettled(settled))
    const bytes = Buffer.concat(parts)
    this.pendingBytes -= batch.reduce((n, p) => n + p.record.length, 0)
    if (this.current.bytes > 0 && this.current.bytes + bytes.length > this.segmentBytes) await this.startSegment(this.current.seq + 1)
    const segment = this.current
    try {
      if (this.options.sync === 'process') {
        writeAll(this.handle.fd, bytes)
      } else {
        await this.handle.write(bytes)
        await this.handle.datasync()
      }
    } catch (err) {
      for (const p of batch) this.refuse(p, err as Error)
      throw err
    }
    segment.bytes += bytes.length
    this.diskBytes += bytes.length
    this.stats.writes++
    for (const p of batch) {
      const entry = this.unsettledIds.get(p.id)
      // Settled already is impossible (it is settled only after this resolves); count it in its segment.
      if (entry !== undefined) { entry.segment = segment; segment.unsettled++ }
      this.stats.appended++
      p.done(undefined, p.id)
    }
    await this.collect()
  }

  private async startSegment (seq: number): Promise<void> {
    const path = join(this.options.dir, segmentName(seq))
    const handle = await open(path, 'a')
    const previous = this.handle as FileHandle | undefined
    this.handle = handle
    this.current = { seq, path, bytes: 0, unsettled: 0 }
    this.segments.push(this.current)
    await previous?.close()
  }

  /** Deletes the oldest segments while every message in them is settled (never the current one), then admits waiting appends. */
  private async collect (): Promise<void> {
    while (this.segments.length > 1 && this.segments[0] !== this.current && this.segments[0].unsettled === 0) {
      const gone = this.segments.shift()!
      this.diskBytes -= gone.bytes
      await unlink(gone.path).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
    }
    while (this.waiting.length > 0 && this.hasRoomFor(this.waiting[0].record.length)) this.enqueue(this.waiting.shift()!)
    if (this.waiting.length === 0) return
    this.rotateIfSettled()
  }

  /** Full, with the current segment all settled: start another, so the current one can go. */
  private rotateIfSettled (): void {
    if (this.current.unsettled > 0 || this.current.bytes === 0) return
    this.rotateRequested = true
    this.schedule()
  }

  private async rotate (): Promise<void> {
    this.rotateRequested = false
    if (this.current.bytes > 0) await this.startSegment(this.current.seq + 1)
    await this.collect()
  }

  private fail (err: Error): void {
    if (this.failure !== undefined) return
    this.failure = err
    this.options.logger.error({ err: err.message, dir: this.options.dir }, 'write-ahead log cannot write: publishes that need it are refused')
    for (const p of [...this.pending, ...this.waiting]) this.refuse(p, err)
    this.pending = []
    this.waiting = []
  }
}
