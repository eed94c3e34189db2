/**
 * Remote MQTT sink: republishes to another broker with mqtt.js, reconnecting on its own. A QoS 1/2
 * message counts as delivered when the broker acknowledges it (at-least-once: a batch cut by a
 * disconnect is sent again); QoS 0 counts once written to the socket (at-most-once past that).
 */
import { resolve } from 'node:path'
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import { DeliveryError, QueuedSink, type Rejection } from '../queued-sink.js'
import type { SinkDefinition } from '../../rules/model/sink-spec.js'
import type { Delivery, SinkContext, SinkType } from '../sink.js'
import { noDelay, withCredentials } from '../clients/mqtt-client.js'
import { mqttSinkSpec } from '../specs/mqtt.js'

const BATCH_TIMEOUT_MS = 30_000

interface MqttOptions {
  url: string
  clientId: string
  username?: string
  password?: string
  protocolVersion: 4 | 5
  clean: boolean
  tls?: { ca?: string, cert?: string, key?: string, rejectUnauthorized: boolean }
}

class MqttSink extends QueuedSink {
  readonly type = 'mqtt'
  private readonly options: MqttOptions
  private client: MqttClient | undefined

  constructor (definition: SinkDefinition, context: SinkContext) {
    super(definition, context)
    const o = definition.options
    const tls = o.tls as Record<string, unknown> | undefined
    const file = (key: string): string | undefined => typeof tls?.[key] === 'string' ? resolve(definition.baseDir, tls[key] as string) : undefined
    this.options = {
      url: o.url as string,
      clientId: typeof o.client_id === 'string' ? o.client_id : `signalbox-${definition.name}-${process.pid}`,
      username: o.username as string | undefined,
      password: o.password as string | undefined,
      protocolVersion: o.protocol_version === 5 ? 5 : 4,
      clean: o.clean !== false,
      tls: tls === undefined ? undefined : { ca: file('ca'), cert: file('cert'), key: file('key'), rejectUnauthorized: tls.reject_unauthorized !== false }
    }
  }

  protected async connect (): Promise<void> {
    const o = this.options
    const options: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: o.protocolVersion,
      clean: o.clean,
      reconnectPeriod: 1_000,
      connectTimeout: 5_000,
      // Our own queue bounds what waits while the broker is away; mqtt.js keeps only what is in flight.
      queueQoSZero: false
    }
    const client = connect(o.url, withCredentials(options, o))
    this.client = client
    client.on('connect', () => { noDelay(client); this.markUp() })
    client.on('close', () => { if (this.isUp()) this.markDown(`connection to ${o.url} closed`) })
    client.on('error', (err) => this.markDown(`${o.url}: ${err.message}`))
  }

  protected async deliver (batch: Delivery[]): Promise<Rejection[]> {
    const client = this.client
    if (client === undefined || !client.connected) throw new DeliveryError('not connected')
    const results = await Promise.allSettled(batch.map((d) => publish(client, d)))
    const rejected: Rejection[] = []
    for (let i = 0; i < results.length; i++) {
      const r = results[i]
      if (r.status === 'fulfilled') continue
      const err = r.reason as Error & { code?: unknown }
      // An MQTT 5 reason code of 0x80 or more is the broker's refusal of this message (not authorised, too large…).
      if (typeof err.code === 'number' && err.code >= 0x80) {
        rejected.push({ index: i, reason: `broker refused '${batch[i].address}': ${err.message} (reason code ${err.code})` })
        continue
      }
      throw new DeliveryError(`publish not acknowledged: ${err.message}`, i, rejected, { cause: err })
    }
    return rejected
  }

  protected async disconnect (): Promise<void> {
    const client = this.client
    this.client = undefined
    if (client !== undefined) await client.endAsync()
  }
}

function publish (client: MqttClient, d: Delivery): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no acknowledgement in ${BATCH_TIMEOUT_MS} ms`)), BATCH_TIMEOUT_MS)
    client.publish(d.address, d.payload, { qos: d.qos, retain: d.retain }, (err) => {
      clearTimeout(timer)
      if (err === undefined || err === null) resolve()
      else reject(err)
    })
  })
}

export const mqttSinkType: SinkType = { ...mqttSinkSpec, create: (definition, context) => new MqttSink(definition, context) }
