/**
 * The embedded broker's state on disk: retained messages, persistent sessions (subscriptions and
 * the QoS ≥ 1 messages queued for them), in-flight QoS 2 state and wills survive a restart. It is
 * aedes' own in-memory persistence (aedes-persistence), which stays the runtime state, with every
 * change also written to a log of changes (`<data_dir>/broker/state.log`, records framed with
 * length and CRC-32). At start the log is read into a compact model of the state, the state is
 * handed to the memory persistence, and the log is rewritten from the model; it is rewritten again
 * when it has grown to several times that size. A change is written, in place, at the end of the
 * task that made it, before the operation resolves (with `power`, after an fdatasync on the
 * thread pool): aedes sends a PUBREC only after incomingStorePacket resolved, so that state is on
 * disk first.
 */
import { closeSync, existsSync, fdatasync, fdatasyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import type { Logger } from '../observe/logger.js'

const require = createRequire(import.meta.url)
/** aedes' in-memory persistence (the one it uses by default), as a class to extend. */
const MemoryPersistence = require('aedes-persistence/asyncPersistence.js') as new () => MemoryApi

/** What signalbox calls of aedes' persistence (its async interface, aedes-persistence 11). */
interface MemoryApi {
  setup (broker: { id: string }): Promise<void>
  storeRetained (packet: Packet): Promise<void>
  addSubscriptions (client: ClientRef, subs: Subscription[]): Promise<void>
  removeSubscriptions (client: ClientRef, topics: string[]): Promise<void>
  cleanSubscriptions (client: ClientRef): Promise<void>
  outgoingEnqueue (sub: { clientId: string }, packet: Packet): Promise<void>
  outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: Packet): Promise<void>
  outgoingUpdate (client: ClientRef, packet: Packet): Promise<void>
  outgoingClearMessageId (client: ClientRef, packet: Packet): Promise<Packet | undefined>
  incomingStorePacket (client: ClientRef, packet: Packet): Promise<void>
  incomingDelPacket (client: ClientRef, packet: Packet): Promise<void>
  cleanIncoming? (client: ClientRef): Promise<void>
  putWill (client: ClientRef, packet: Packet): Promise<void>
  delWill (client: ClientRef): Promise<Packet | undefined>
  destroy (): Promise<void>
}

interface ClientRef { id: string }
interface Subscription { topic: string, qos: number, rh?: number, rap?: boolean, nl?: boolean, subscriptionIdentifier?: number }
type Packet = Record<string, unknown> & { topic?: string, payload?: Buffer | string, messageId?: number, brokerId?: string, brokerCounter?: number }

/** A packet as a log record holds it: its payload (and correlation data) in base64. */
type Stored = Record<string, unknown>

type Change =
  | { op: 'retain', packet: Stored }
  | { op: 'sub', client: string, subs: Subscription[] }
  | { op: 'unsub', client: string, topics: string[] }
  | { op: 'clean', client: string }
  | { op: 'enqueue', clients: string[], packet: Stored }
  | { op: 'update', client: string, packet: Stored }
  | { op: 'clear', client: string, messageId: number }
  | { op: 'in', client: string, packet: Stored }
  | { op: 'indel', client: string, messageId: number }
  | { op: 'inclean', client: string }
  | { op: 'will', client: string, packet: Stored }
  | { op: 'delwill', client: string }

function store (packet: Packet): Stored {
  const out: Stored = { ...packet }
  const payload = packet.payload
  out.payload = Buffer.isBuffer(payload) ? payload.toString('base64') : Buffer.from(payload ?? '').toString('base64')
  const properties = packet.properties as Record<string, unknown> | undefined
  if (properties !== undefined && Buffer.isBuffer(properties.correlationData)) out.properties = { ...properties, correlationData: { base64: properties.correlationData.toString('base64') } }
  return out
}

function load (stored: Stored): Packet {
  const packet: Packet = { ...stored, payload: Buffer.from(stored.payload as string, 'base64') }
  const properties = stored.properties as Record<string, unknown> | undefined
  const correlation = properties?.correlationData as { base64?: string } | undefined
  if (correlation?.base64 !== undefined) packet.properties = { ...properties, correlationData: Buffer.from(correlation.base64, 'base64') }
  return packet
}

/** The broker's state as the log describes it: what a rewrite of the log writes back. */
class StateModel {
  readonly retained = new Map<string, Stored>()
  readonly subscriptions = new Map<string, Map<string, Subscription>>()
  readonly outgoing = new Map<string, Stored[]>()
  readonly incoming = new Map<string, Map<number, Stored>>()
  readonly wills = new Map<string, Stored>()

  apply (c: Change): void {
    switch (c.op) {
      case 'retain':
        if (Buffer.from(c.packet.payload as string, 'base64').length === 0) this.retained.delete(c.packet.topic as string)
        else this.retained.set(c.packet.topic as string, c.packet)
        break
      case 'sub': {
        const subs = this.subscriptions.get(c.client) ?? new Map<string, Subscription>()
        for (const s of c.subs) subs.set(s.topic, s)
        this.subscriptions.set(c.client, subs)
        break
      }
      case 'unsub': {
        const subs = this.subscriptions.get(c.client)
        for (const t of c.topics) subs?.delete(t)
        if (subs?.size === 0) this.subscriptions.delete(c.client)
        break
      }
      case 'clean': this.subscriptions.delete(c.client); break
      case 'enqueue':
        for (const id of c.clients) this.outgoing.set(id, [...(this.outgoing.get(id) ?? []), c.packet])
        break
      case 'update': {
        // As aedes-persistence matches: the same broker's counter, else the same message id.
        const queue = this.outgoing.get(c.client) ?? []
        for (let i = 0; i < queue.length; i++) {
          const q = queue[i]
          if (q.brokerId === c.packet.brokerId) {
            if (q.brokerCounter === c.packet.brokerCounter) { queue[i] = { ...q, messageId: c.packet.messageId }; break }
          } else if (q.messageId === c.packet.messageId) { queue[i] = c.packet; break }
        }
        break
      }
      case 'clear': {
        const queue = this.outgoing.get(c.client) ?? []
        const at = queue.findIndex((q) => q.messageId === c.messageId)
        if (at >= 0) queue.splice(at, 1)
        if (queue.length === 0) this.outgoing.delete(c.client)
        break
      }
      case 'in': {
        const stored = this.incoming.get(c.client) ?? new Map<number, Stored>()
        stored.set(c.packet.messageId as number, c.packet)
        this.incoming.set(c.client, stored)
        break
      }
      case 'indel': this.incoming.get(c.client)?.delete(c.messageId); break
      case 'inclean': this.incoming.delete(c.client); break
      case 'will': this.wills.set(c.client, c.packet); break
      case 'delwill': this.wills.delete(c.client); break
    }
  }

  /** The changes that rebuild this state from nothing. */
  * changes (): Generator<Change> {
    for (const packet of this.retained.values()) yield { op: 'retain', packet }
    for (const [client, subs] of this.subscriptions) yield { op: 'sub', client, subs: [...subs.values()] }
    for (const [client, queue] of this.outgoing) for (const packet of queue) yield { op: 'enqueue', clients: [client], packet }
    for (const [client, stored] of this.incoming) for (const packet of stored.values()) yield { op: 'in', client, packet }
    for (const [client, packet] of this.wills) yield { op: 'will', client, packet }
  }
}

function frame (c: Change): Buffer {
  const body = Buffer.from(JSON.stringify(c))
  const b = Buffer.allocUnsafe(8 + body.length)
  b.writeUInt32LE(body.length, 0)
  b.writeUInt32LE(crc32(body), 4)
  body.copy(b, 8)
  return b
}

/** The changes in a log's bytes, up to the first record cut short or corrupt. */
function readChanges (bytes: Buffer): { changes: Change[], torn: boolean } {
  const changes: Change[] = []
  let at = 0
  while (at + 8 <= bytes.length) {
    const length = bytes.readUInt32LE(at)
    const body = bytes.subarray(at + 8, at + 8 + length)
    if (body.length < length || crc32(body) !== bytes.readUInt32LE(at + 4)) break
    try {
      changes.push(JSON.parse(body.toString('utf8')) as Change)
    } catch {
      break
    }
    at += 8 + length
  }
  return { changes, torn: at < bytes.length }
}

export interface BrokerStateSettings {
  dataDir: string
  /** `power`: each write is followed by fdatasync. */
  sync: 'process' | 'power'
  logger: Logger
}

/** Rewrite the log once it is this many times the size it had after the last rewrite (and at least 1 MiB). */
const REWRITE_GROWTH = 4
const REWRITE_MIN_BYTES = 1024 * 1024

/** aedes' memory persistence whose every change also goes to the state log. */
export class DurablePersistence extends MemoryPersistence {
  private readonly file: string
  private fd: number | undefined
  private model = new StateModel()
  private pending: Buffer[] = []
  private waiters: Array<() => void> = []
  private scheduled = false
  private bytes = 0
  private rewrittenAt = 0
  /** fdatasync calls on their way (durability power). */
  private syncing = 0
  /** Set while the saved state is handed to the memory persistence: those changes are not logged again. */
  private restoring = false

  constructor (private readonly settings: BrokerStateSettings) {
    super()
    this.file = join(settings.dataDir, 'broker', 'state.log')
  }

  override async setup (broker: { id: string }): Promise<void> {
    await super.setup(broker)
    mkdirSync(join(this.settings.dataDir, 'broker'), { recursive: true })
    if (existsSync(this.file)) {
      const { changes, torn } = readChanges(readFileSync(this.file))
      if (torn) this.settings.logger.warn({ file: this.file }, 'broker state: a change cut short or corrupt at the end of the log (a crash mid-write) is skipped')
      for (const c of changes) this.model.apply(c)
    }
    await this.restore()
    this.rewrite()
    this.settings.logger.info({ file: this.file, retained: this.model.retained.size, sessions: this.model.subscriptions.size, queued: [...this.model.outgoing.values()].reduce((n, q) => n + q.length, 0) }, 'broker state loaded')
  }

  /** Hands the saved state to the memory persistence, as the changes that make it. */
  private async restore (): Promise<void> {
    this.restoring = true
    try {
      for (const c of this.model.changes()) {
        const client = { id: 'client' in c ? c.client : '' }
        if (c.op === 'retain') await super.storeRetained(load(c.packet))
        else if (c.op === 'sub') await super.addSubscriptions(client, c.subs)
        else if (c.op === 'enqueue') await super.outgoingEnqueue({ clientId: c.clients[0] }, load(c.packet))
        else if (c.op === 'in') await super.incomingStorePacket(client, load(c.packet))
        else if (c.op === 'will') {
          const packet = load(c.packet)
          const brokerId = packet.brokerId
          await super.putWill(client, packet)
          // putWill names the running broker; the will belongs to the one that died, so aedes publishes it.
          packet.brokerId = brokerId
        }
      }
    } finally {
      this.restoring = false
    }
  }

  /** Writes the model as a fresh log (beside the old one, then renamed over it). */
  private rewrite (): void {
    const next = `${this.file}.next`
    const fd = openSync(next, 'w')
    let bytes = 0
    for (const c of this.model.changes()) {
      const b = frame(c)
      writeAll(fd, b)
      bytes += b.length
    }
    fdatasyncSync(fd)
    closeSync(fd)
    renameSync(next, this.file)
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = openSync(this.file, 'a')
    this.bytes = bytes
    this.rewrittenAt = bytes
  }

  /** Logs a change; resolves once it is written (and, with `power`, synced). */
  private log (c: Change): Promise<void> {
    if (this.restoring) return Promise.resolve()
    this.model.apply(c)
    this.pending.push(frame(c))
    return new Promise((resolve) => {
      this.waiters.push(resolve)
      if (this.scheduled) return
      this.scheduled = true
      queueMicrotask(() => this.flush())
    })
  }

  private flush (): void {
    this.scheduled = false
    const bytes = Buffer.concat(this.pending)
    const waiters = this.waiters
    this.pending = []
    this.waiters = []
    if (this.fd !== undefined) {
      try {
        writeAll(this.fd, bytes)
        this.bytes += bytes.length
        // A rewrite closes the file: never while a sync of it is on its way (the next flush does it).
        if (this.syncing === 0 && this.bytes > Math.max(REWRITE_MIN_BYTES, this.rewrittenAt * REWRITE_GROWTH)) {
          this.rewrite()
        } else if (this.settings.sync === 'power') {
          // The sync runs on the thread pool, not the broker's thread; the changes resolve after it.
          this.syncing++
          fdatasync(this.fd, (err) => {
            this.syncing--
            if (err !== null) this.settings.logger.error({ err: err.message, file: this.file }, 'broker state: cannot sync the log')
            for (const w of waiters) w()
          })
          return
        }
      } catch (err) {
        // The memory state goes on; what is not on disk is lost only if the process dies too.
        this.settings.logger.error({ err: (err as Error).message, file: this.file }, 'broker state: cannot write the log')
      }
    }
    for (const w of waiters) w()
  }

  override async storeRetained (packet: Packet): Promise<void> {
    await super.storeRetained(packet)
    // $SYS reports are made again every interval: kept in memory, not written.
    if (packet.topic?.startsWith('$SYS/') === true) return
    await this.log({ op: 'retain', packet: store(packet) })
  }

  override async addSubscriptions (client: ClientRef, subs: Subscription[]): Promise<void> {
    await super.addSubscriptions(client, subs)
    await this.log({ op: 'sub', client: client.id, subs: subs.map((s) => ({ ...s })) })
  }

  override async removeSubscriptions (client: ClientRef, topics: string[]): Promise<void> {
    await super.removeSubscriptions(client, topics)
    await this.log({ op: 'unsub', client: client.id, topics })
  }

  override async cleanSubscriptions (client: ClientRef): Promise<void> {
    await super.cleanSubscriptions(client)
    await this.log({ op: 'clean', client: client.id })
  }

  override async outgoingEnqueue (sub: { clientId: string }, packet: Packet): Promise<void> {
    await super.outgoingEnqueue(sub, packet)
    await this.log({ op: 'enqueue', clients: [sub.clientId], packet: store(packet) })
  }

  override async outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: Packet): Promise<void> {
    await super.outgoingEnqueueCombi(subs, packet)
    // aedes calls this for every QoS ≥ 1 publish, most often with no session to queue for.
    if (subs.length === 0) return
    await this.log({ op: 'enqueue', clients: subs.map((s) => s.clientId), packet: store(packet) })
  }

  override async outgoingUpdate (client: ClientRef, packet: Packet): Promise<void> {
    await super.outgoingUpdate(client, packet)
    await this.log({ op: 'update', client: client.id, packet: store(packet) })
  }

  override async outgoingClearMessageId (client: ClientRef, packet: Packet): Promise<Packet | undefined> {
    const cleared = await super.outgoingClearMessageId(client, packet)
    await this.log({ op: 'clear', client: client.id, messageId: packet.messageId as number })
    return cleared
  }

  override async incomingStorePacket (client: ClientRef, packet: Packet): Promise<void> {
    await super.incomingStorePacket(client, packet)
    await this.log({ op: 'in', client: client.id, packet: store({ ...packet, messageId: packet.messageId }) })
  }

  override async incomingDelPacket (client: ClientRef, packet: Packet): Promise<void> {
    await super.incomingDelPacket(client, packet)
    await this.log({ op: 'indel', client: client.id, messageId: packet.messageId as number })
  }

  override async cleanIncoming (client: ClientRef): Promise<void> {
    await super.cleanIncoming?.(client)
    await this.log({ op: 'inclean', client: client.id })
  }

  override async putWill (client: ClientRef, packet: Packet): Promise<void> {
    await super.putWill(client, packet)
    await this.log({ op: 'will', client: client.id, packet: store(packet) })
  }

  override async delWill (client: ClientRef): Promise<Packet | undefined> {
    const will = await super.delWill(client)
    await this.log({ op: 'delwill', client: client.id })
    return will
  }

  override async destroy (): Promise<void> {
    await super.destroy()
    if (this.pending.length > 0) this.flush()
    if (this.fd !== undefined) { closeSync(this.fd); this.fd = undefined }
  }
}

function writeAll (fd: number, bytes: Buffer): void {
  let done = 0
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done)
}
