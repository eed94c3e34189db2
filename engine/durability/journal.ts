/**
 * The embedded broker's journal: the write-ahead log (wal.ts) seen from the broker and the engine.
 * It keeps each QoS ≥ 1 publish a rule will handle before the ack, gives the message a settlement
 * that its outputs hold, settles the log when the last one lets go, and at start hands what was
 * never settled to the engine again, before any new publish is let in.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import type { InboundMessage, Settlement } from '../../rules/model/message.js'
import type { Journal, JournaledPublish } from '../broker/broker.js'
import type { Logger } from '../observe/logger.js'
import { WriteAheadLog, type Unsettled, type WalStats, type WalSync } from './wal.js'

export interface JournalSettings {
  /** The data directory; the log lives in its `wal/`. */
  dataDir: string
  sync: WalSync
  maxBytes: number
}

export interface JournalStats extends WalStats {
  /** Messages handed to the engine again at start. */
  replayed: number
}

/** Messages replayed per turn of the event loop; between slices, the sinks' queues get room. */
const REPLAY_SLICE = 256
/** A sink this full makes the replay wait (up to REPLAY_WAIT_MS at a time), so its queue does not overflow. */
const REPLAY_QUEUE_FRACTION = 0.8
const REPLAY_WAIT_MS = 5_000

/** What a logged message waits for: one hold per output (and per message derived from it). */
class LoggedSettlement implements Settlement {
  private holds = 0
  readonly id: string
  constructor (private readonly walId: number, private readonly journal: MessageJournal, readonly replayed: boolean) {
    this.id = `${journal.instance}-${walId}`
  }

  hold (): void {
    this.holds++
  }

  release (): void {
    if (--this.holds === 0) this.journal.settle(this.walId)
  }

  abandon (): void {
    if (!this.journal.stopping) this.release()
  }
}

export class MessageJournal {
  /** Set when the process stops: what a sink gives up on then stays in the log, for the next start. */
  stopping = false
  private replaying = true
  private replayed = 0
  private admit!: () => void
  /** New publishes wait for this: the replay comes first. */
  private readonly admitted = new Promise<void>((resolve) => { this.admit = resolve })

  private constructor (private readonly wal: WriteAheadLog, private unsettled: Unsettled[], private readonly logger: Logger, readonly instance: string) {}

  static async open (settings: JournalSettings, logger: Logger): Promise<MessageJournal> {
    const dir = join(settings.dataDir, 'wal')
    const { wal, unsettled } = await WriteAheadLog.open({ dir, sync: settings.sync, maxBytes: settings.maxBytes, logger })
    logger.info({ dir, sync: settings.sync, maxBytes: settings.maxBytes, unsettled: unsettled.length }, 'write-ahead log open')
    return new MessageJournal(wal, unsettled, logger, instanceId(dir))
  }

  /** The broker's journal: keeps a publish that `handles(topic)` says a rule will take. */
  journalFor (handles: (topic: string) => boolean): Journal {
    return (publish: JournaledPublish, done) => {
      if (!handles(publish.topic)) return false
      const append = (): void => { this.wal.appendThen(publish, (err, id) => done(err, err === undefined ? new LoggedSettlement(id, this, false) : undefined)) }
      // Until the replay is done, new publishes wait (their acks with them).
      if (this.replaying) this.admitted.then(append, () => {})
      else append()
      return true
    }
  }

  /**
   * Hands every message the log kept unsettled to `handle`, oldest first, with its first arrival
   * time; waits while `roomy()` says a sink's queue is nearly full. Then lets new publishes in.
   */
  async replay (handle: (msg: InboundMessage) => void, crowded: () => boolean): Promise<number> {
    const messages = this.unsettled
    this.unsettled = []
    const started = Date.now()
    for (let i = 0; i < messages.length; i++) {
      const { id, message } = messages[i]
      handle({ topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain, clientId: message.clientId, hops: 0, receivedAt: message.receivedAt, settlement: new LoggedSettlement(id, this, true) })
      this.replayed++
      if (i % REPLAY_SLICE !== REPLAY_SLICE - 1) continue
      await nextTurn()
      for (let waited = 0; crowded() && waited < REPLAY_WAIT_MS; waited += 20) await sleep(20)
    }
    if (messages.length > 0) this.logger.info({ replayed: messages.length, ms: Date.now() - started }, `write-ahead log: ${messages.length} unsettled messages handled again`)
    this.replaying = false
    this.admit()
    return messages.length
  }

  settle (id: number): void {
    this.wal.settle(id)
  }

  /** Whether acks are held for want of room in the log. */
  full (): boolean {
    return this.wal.full()
  }

  snapshot (): JournalStats {
    return { ...this.wal.snapshot(), replayed: this.replayed }
  }

  async close (): Promise<void> {
    this.replaying = false
    this.admit()
    await this.wal.close()
  }
}

/**
 * The log's own id, made once and kept beside its segments: message ids are `<instance>-<n>`, so
 * a new data directory (whose n start again at 1) never repeats the ids of another.
 */
function instanceId (dir: string): string {
  const file = join(dir, 'instance')
  try {
    const id = readFileSync(file, 'utf8').trim()
    if (/^[0-9a-f]{12}$/.test(id)) return id
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const id = randomBytes(6).toString('hex')
  writeFileSync(file, id + '\n')
  return id
}

/** Whether any sink's queue is past REPLAY_QUEUE_FRACTION of its capacity. */
export function queuesCrowded (healths: Iterable<{ depth: number, capacity: number }>): boolean {
  for (const h of healths) if (h.depth > h.capacity * REPLAY_QUEUE_FRACTION) return true
  return false
}
