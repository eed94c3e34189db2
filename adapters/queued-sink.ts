/**
 * The delivery machinery every sink shares: a bounded FIFO, one pump that hands batches to the
 * transport in order, retries with capped exponential backoff while the destination is down, and
 * counts every message until it is delivered or dropped. A transport only connects and delivers.
 */
import type { Logger } from '../rules/model/logger.js'
import { DEFAULT_QUEUE_SIZE, type SinkDefinition } from '../rules/model/sink-spec.js'
import type { Delivery, DropReason, Sink, SinkContext, SinkCounters, SinkHealth, SinkState } from './sink.js'

const MAX_BATCH = 256
const BACKOFF_FIRST_MS = 100
const BACKOFF_MAX_MS = 5_000
/** The longest wait a destination's Retry-After can ask for. */
const RETRY_AFTER_MAX_MS = 60_000

/** Messages of a batch the destination refused for good: dropped as 'rejected', never retried. */
export interface Rejection {
  index: number
  reason: string
}

/**
 * A delivery attempt failed part-way: the first `completed` messages of the batch are done
 * (`rejected` among them are refused), the rest will be retried.
 */
export class DeliveryError extends Error {
  /** The destination asked for this long a wait before the retry (HTTP Retry-After). */
  readonly retryAfterMs: number | undefined
  constructor (message: string, readonly completed = 0, readonly rejected: Rejection[] = [], options?: { cause?: unknown, retryAfterMs?: number }) {
    super(message, options)
    this.retryAfterMs = options?.retryAfterMs
    this.name = 'DeliveryError'
  }
}

/** The runs of consecutive messages of a batch that go to one address (one file, table or URL): [start, end) each. */
export function addressRuns (batch: readonly Delivery[]): Array<readonly [number, number]> {
  const runs: Array<readonly [number, number]> = []
  let i = 0
  while (i < batch.length) {
    let j = i + 1
    while (j < batch.length && batch[j].address === batch[i].address) j++
    runs.push([i, j])
    i = j
  }
  return runs
}

/**
 * The messages of a batch by address (a table, a URL), each group in batch order, groups in the
 * order of their first message: one statement or request per address, however they interleave.
 */
export function byAddress (batch: readonly Delivery[]): number[][] {
  const groups = new Map<string, number[]>()
  batch.forEach((d, i) => {
    const group = groups.get(d.address)
    if (group === undefined) groups.set(d.address, [i])
    else group.push(i)
  })
  return [...groups.values()]
}

/**
 * The prefix of a batch that is done, given which messages are: what a DeliveryError reports as
 * completed when groups finish out of batch order (done ones after it are sent again: at least once).
 */
export function donePrefix (done: ReadonlySet<number>): number {
  let n = 0
  while (done.has(n)) n++
  return n
}

/** How a transport wants its batches: at most `maxBatch` messages, and how long to wait for one to fill. */
export interface Batching {
  maxBatch: number
  /** With fewer than maxBatch waiting, the pump waits this long for more before delivering (0: never). */
  lingerMs: number
}

export abstract class QueuedSink implements Sink {
  readonly name: string
  abstract readonly type: string
  protected readonly logger: Logger
  private readonly capacity: number
  private items: Delivery[] = []
  private head = 0
  private state: SinkState = 'idle'
  private stateSince = Date.now()
  private lastError: string | undefined
  private lastDrop: string | undefined
  private accepting = true
  private pumping = false
  /** Bumped when a close gives up on the queue, so a late batch result is not counted twice. */
  private generation = 0
  private backoffMs = BACKOFF_FIRST_MS
  private wake: (() => void) | undefined
  private idleWaiters: Array<() => void> = []
  private readonly loggedDrops = new Set<DropReason>()
  private readonly count: SinkCounters = {
    emitted: 0, queued: 0, delivered: 0, retried: 0, failures: 0, dropped: { queue_full: 0, rejected: 0, shutdown: 0 }
  }

  private readonly observeDelivery: SinkContext['observeDelivery']
  private readonly deadLetter: SinkContext['deadLetter']

  private readonly batching: Batching
  /** The pump waits for a batch to fill; a full one wakes it. */
  private lingering = false

  constructor (definition: SinkDefinition, context: SinkContext, batching: Batching = { maxBatch: MAX_BATCH, lingerMs: 0 }) {
    this.batching = batching
    this.name = definition.name
    this.capacity = typeof definition.options.queue_size === 'number' ? definition.options.queue_size : DEFAULT_QUEUE_SIZE
    this.logger = context.logger.child({ sink: definition.name })
    this.observeDelivery = context.observeDelivery
    this.deadLetter = context.deadLetter
  }

  /** Opens the connection (or nothing, for a file); must not wait for a server that is down. */
  protected abstract connect (): Promise<void>
  /** Delivers a batch in order. Throws DeliveryError (or any error: nothing completed) to have the rest retried. */
  protected abstract deliver (batch: Delivery[]): Promise<Rejection[]>
  /** Releases the connection; called once, after the drain. */
  protected abstract disconnect (): Promise<void>

  async start (): Promise<void> {
    this.setState('connecting')
    await this.connect()
  }

  send (delivery: Delivery): void {
    this.count.emitted++
    if (!this.accepting) { this.drop('shutdown', 1, 'sink is closed'); delivery.settlement?.abandon(); return }
    if (this.depth() >= this.capacity) { this.drop('queue_full', 1, `queue full (${this.capacity} messages)`); delivery.settlement?.release(); return }
    this.count.queued++
    this.items.push(delivery)
    if (this.lingering && this.depth() >= this.batching.maxBatch) this.wake?.()
    this.kick()
  }

  flush (timeoutMs: number): Promise<boolean> {
    if (this.depth() === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.idleWaiters = this.idleWaiters.filter((w) => w !== done); resolve(false) }, timeoutMs)
      const done = (): void => { clearTimeout(timer); resolve(true) }
      this.idleWaiters.push(done)
    })
  }

  async close (timeoutMs: number): Promise<void> {
    if (this.state === 'closed') return
    this.accepting = false
    const drained = await this.flush(timeoutMs)
    if (!drained) {
      const left = this.depth()
      for (let i = this.head; i < this.items.length; i++) this.items[i].settlement?.abandon()
      this.generation++
      this.items = []
      this.head = 0
      this.drop('shutdown', left, `drain timed out after ${timeoutMs} ms`)
      this.notifyIdle()
    }
    this.wake?.()
    try {
      await this.disconnect()
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'error while disconnecting')
    }
    this.setState('closed')
  }

  health (): SinkHealth {
    const h: SinkHealth = { state: this.state, since: this.stateSince, depth: this.depth(), capacity: this.capacity }
    if (this.lastError !== undefined) h.lastError = this.lastError
    if (this.lastDrop !== undefined) h.lastDrop = this.lastDrop
    return h
  }

  counters (): SinkCounters {
    return { ...this.count, dropped: { ...this.count.dropped } }
  }

  /** Transports call this when the connection comes up: a waiting pump retries at once. */
  protected markUp (): void {
    this.setState('up')
    this.backoffMs = BACKOFF_FIRST_MS
    this.wake?.()
  }

  /** Transports call this when the connection is lost. */
  protected markDown (reason: string): void {
    this.lastError = reason
    this.setState('down')
  }

  protected isUp (): boolean {
    return this.state === 'up'
  }

  private depth (): number {
    return this.items.length - this.head
  }

  private kick (): void {
    if (!this.pumping) this.pump().catch((err: Error) => this.logger.error({ err: err.message }, 'delivery loop failed'))
  }

  private async pump (): Promise<void> {
    this.pumping = true
    try {
      while (this.depth() > 0 && this.state !== 'closed') {
        if (this.state !== 'up') { await this.pause(BACKOFF_MAX_MS); continue }
        // Fewer rows than a batch holds: wait a little for more (not while closing: the drain goes at once).
        if (this.batching.lingerMs > 0 && this.depth() < this.batching.maxBatch && this.accepting) {
          this.lingering = true
          await this.pause(this.batching.lingerMs)
          this.lingering = false
          if (this.depth() === 0) continue
        }
        const generation = this.generation
        const batch = this.items.slice(this.head, this.head + this.batching.maxBatch)
        let completed = batch.length
        let rejected: Rejection[] = []
        let failure: Error | undefined
        try {
          rejected = await this.deliver(batch)
        } catch (err) {
          failure = err as Error
          completed = err instanceof DeliveryError ? err.completed : 0
          rejected = err instanceof DeliveryError ? err.rejected : []
        }
        if (generation !== this.generation) continue
        this.settle(batch, completed, rejected)
        if (failure !== undefined) {
          this.count.failures++
          this.count.retried += batch.length - completed
          this.lastError = failure.message
          if (this.state === 'up') {
            this.logger.warn({ err: failure.message, depth: this.depth() }, 'delivery failed; retrying with backoff')
          }
          const asked = failure instanceof DeliveryError ? failure.retryAfterMs : undefined
          await this.pause(asked !== undefined ? Math.min(Math.max(asked, this.backoffMs), RETRY_AFTER_MAX_MS) : this.backoffMs)
          this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS)
        } else {
          this.backoffMs = BACKOFF_FIRST_MS
          this.lastError = undefined
        }
      }
    } finally {
      this.pumping = false
    }
    if (this.depth() === 0) this.notifyIdle()
  }

  /** Removes the first `completed` messages of the batch from the queue and counts them. */
  private settle (batch: Delivery[], completed: number, rejected: Rejection[]): void {
    if (completed === 0) return
    this.head += completed
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    const refused = rejected.filter((r) => r.index < completed)
    this.count.delivered += completed - refused.length
    for (let i = 0; i < completed; i++) batch[i].settlement?.release()
    for (const r of refused) {
      this.drop('rejected', 1, r.reason, batch[r.index])
      this.deadLetter?.(this.name, batch[r.index], r.reason)
    }
    if (this.observeDelivery !== undefined) {
      const now = Date.now()
      const skip = new Set(refused.map((r) => r.index))
      for (let i = 0; i < completed; i++) if (!skip.has(i)) this.observeDelivery(this.name, (now - batch[i].time) / 1000)
    }
    if (this.depth() === 0) this.notifyIdle()
  }

  private drop (reason: DropReason, n: number, detail: string, delivery?: Delivery): void {
    this.count.dropped[reason] += n
    this.lastDrop = `${reason}: ${detail}`
    // Each reason is logged at warn once, then at debug: a flood of drops must not flood the log.
    const level = this.loggedDrops.has(reason) ? 'debug' : 'warn'
    this.loggedDrops.add(reason)
    this.logger[level]({ reason, dropped: n, detail, rule: delivery?.rule, address: delivery?.address }, 'messages dropped')
  }

  /** Waits `ms`, or less when the connection comes up or the sink closes. */
  private pause (ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      const self = this
      function done (): void { clearTimeout(timer); if (self.wake === done) self.wake = undefined; resolve() }
      this.wake = done
    })
  }

  private notifyIdle (): void {
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const w of waiters) w()
  }

  private setState (state: SinkState): void {
    if (this.state === state || this.state === 'closed') return
    const previous = this.state
    this.state = state
    this.stateSince = Date.now()
    if (state === 'up') this.logger.info({ from: previous }, 'sink up')
    else if (state === 'down') this.logger.warn({ from: previous, err: this.lastError, depth: this.depth() }, 'sink down; queueing')
  }
}
