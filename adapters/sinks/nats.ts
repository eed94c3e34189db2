/**
 * NATS sink (the `nats` client). Core NATS: a batch counts as delivered once a flush (PING/PONG)
 * after it returns, so the server has every message of it; a failed flush retries the batch
 * (at-least-once to the server). JetStream: each message waits for its stream's ack, with a
 * message id so a retried duplicate is dropped by the stream's duplicate window.
 */
import { randomUUID } from 'node:crypto'
import { connect, ErrorCode, Events, headers, NatsError, type ConnectionOptions, type MsgHdrs, type NatsConnection } from 'nats'
import { DeliveryError, QueuedSink, type Rejection } from '../queued-sink.js'
import type { SinkDefinition } from '../../rules/model/sink-spec.js'
import { typedSinkType, type Delivery, type SinkContext } from '../sink.js'
import { describeNatsError, natsConnectionOptions, type NatsClientSettings } from '../clients/nats-connection.js'
import { resolvedTls } from '../clients/pem.js'
import { natsSinkSpec, normaliseServers, type NatsSinkOptions } from '../specs/nats.js'

const FLUSH_TIMEOUT_MS = 5_000
const REDIAL_MAX_MS = 5_000

/** Errors that retrying the same message cannot fix. */
const PERMANENT: ReadonlySet<string> = new Set([ErrorCode.BadSubject, ErrorCode.MaxPayloadExceeded, ErrorCode.BadHeader])

class NatsSink extends QueuedSink {
  readonly type = 'nats'
  private readonly options: NatsSinkOptions
  /** How to connect: servers as a list, TLS files resolved. */
  private readonly client: NatsClientSettings
  private nc: NatsConnection | undefined
  private closing = false
  private redial: (() => void) | undefined
  /** JetStream message ids, kept with the delivery so a retry sends the same id. */
  private readonly msgIds = new WeakMap<Delivery, string>()
  private readonly idPrefix = randomUUID().slice(0, 8)
  private seq = 0

  constructor (definition: SinkDefinition, options: NatsSinkOptions, context: SinkContext) {
    super(definition, context)
    this.options = options
    this.client = {
      servers: normaliseServers(options.servers),
      name: options.client_name,
      user: options.user,
      pass: options.pass,
      token: options.token,
      tls: resolvedTls(options.tls, definition.baseDir)
    }
  }

  protected async connect (): Promise<void> {
    const options = this.connectionOptions()
    this.dialLoop(options).catch((err: Error) => this.logger.error({ err: err.message }, 'connection loop failed'))
  }

  protected async deliver (batch: Delivery[]): Promise<Rejection[]> {
    const nc = this.nc
    if (nc === undefined || !this.isUp()) throw new DeliveryError('not connected')
    return this.options.jetstream ? await this.deliverJetStream(nc, batch) : await this.deliverCore(nc, batch)
  }

  protected async disconnect (): Promise<void> {
    this.closing = true
    this.redial?.()
    const nc = this.nc
    this.nc = undefined
    if (nc === undefined || nc.isClosed()) return
    await nc.close()
  }

  private async deliverCore (nc: NatsConnection, batch: Delivery[]): Promise<Rejection[]> {
    const rejected: Rejection[] = []
    for (let i = 0; i < batch.length; i++) {
      const d = batch[i]
      try {
        nc.publish(d.address, d.payload, { headers: this.headersFor(d) })
      } catch (err) {
        if (!isPermanent(err)) throw new DeliveryError(`publish failed: ${(err as Error).message}`, 0, [], { cause: err })
        rejected.push({ index: i, reason: `NATS refused '${d.address}': ${(err as Error).message}` })
      }
    }
    try {
      await withTimeout(nc.flush(), FLUSH_TIMEOUT_MS, 'flush')
    } catch (err) {
      throw new DeliveryError(`server did not confirm the batch: ${(err as Error).message}`, 0, [], { cause: err })
    }
    return rejected
  }

  private async deliverJetStream (nc: NatsConnection, batch: Delivery[]): Promise<Rejection[]> {
    const js = nc.jetstream()
    const results = await Promise.allSettled(batch.map(async (d) => {
      // A logged message's output has an id that survives a restart: the stream's duplicate window drops a replay.
      let msgID = d.id ?? this.msgIds.get(d)
      if (msgID === undefined) { msgID = `${this.idPrefix}-${++this.seq}`; this.msgIds.set(d, msgID) }
      return await js.publish(d.address, d.payload, { headers: this.headersFor(d), msgID, timeout: this.options.ack_timeout_ms })
    }))
    const rejected: Rejection[] = []
    for (let i = 0; i < results.length; i++) {
      const r = results[i]
      if (r.status === 'fulfilled') continue
      const err = r.reason as Error
      if (isPermanent(err)) { rejected.push({ index: i, reason: `JetStream refused '${batch[i].address}': ${err.message}` }); continue }
      const hint = isNoResponders(err) ? ` (no stream captures subject '${batch[i].address}'?)` : ''
      // Everything before i is acked; i and later are retried, and the stream drops duplicates by id.
      throw new DeliveryError(`JetStream publish not acknowledged: ${err.message}${hint}`, i, rejected, { cause: err })
    }
    return rejected
  }

  private headersFor (d: Delivery): MsgHdrs {
    const h = headers()
    // A header value cannot hold CR or LF; an MQTT topic can.
    h.set('Signalbox-Topic', /[\r\n]/.test(d.topic) ? encodeURIComponent(d.topic) : d.topic)
    h.set('Signalbox-Rule', d.rule)
    h.set('Signalbox-Hops', String(d.hops))
    // A logged message's output: the same id after a replay (JetStream also gets it as Nats-Msg-Id).
    if (d.id !== undefined) h.set('Signalbox-Id', d.id)
    return h
  }

  private connectionOptions (): ConnectionOptions {
    return natsConnectionOptions(this.client)
  }

  /** Connects, and connects again if the first attempt fails; after that the client reconnects on its own. */
  private async dialLoop (options: ConnectionOptions): Promise<void> {
    let wait = 100
    while (!this.closing) {
      try {
        const nc = await connect(options)
        if (this.closing) { await nc.close(); return }
        this.nc = nc
        this.watch(nc).catch((err: Error) => this.logger.warn({ err: err.message }, 'status watch ended'))
        this.markUp()
        const err = await nc.closed()
        if (this.closing) return
        this.markDown(`connection closed${err !== undefined ? `: ${err.message}` : ''}`)
        wait = 100
      } catch (err) {
        this.markDown(`cannot connect to ${o2s(options.servers)}: ${describeNatsError(err as Error)}`)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait)
        this.redial = () => { clearTimeout(timer); resolve() }
      })
      wait = Math.min(wait * 2, REDIAL_MAX_MS)
    }
  }

  private async watch (nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) this.markDown(`disconnected from ${String(status.data)}`)
      else if (status.type === Events.Reconnect) this.markUp()
    }
  }
}

function isPermanent (err: unknown): boolean {
  return err instanceof NatsError && PERMANENT.has(err.code)
}

function isNoResponders (err: unknown): boolean {
  return err instanceof NatsError && err.code === ErrorCode.NoResponders
}

function o2s (servers: ConnectionOptions['servers']): string {
  return Array.isArray(servers) ? servers.join(', ') : String(servers)
}

async function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

export const natsSinkType = typedSinkType<NatsSinkOptions>(natsSinkSpec, (definition, options, context) => new NatsSink(definition, options, context))
