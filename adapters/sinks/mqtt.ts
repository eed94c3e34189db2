/**
 * Remote MQTT sink: republishes to another broker with mqtt.js, reconnecting on its own. A QoS 1/2
 * message counts as delivered when the broker acknowledges it (at-least-once: a batch cut by a
 * disconnect is sent again); QoS 0 counts once written to the socket (at-most-once past that).
 */
import { connect, type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt'
import { DeliveryError, QueuedSink, type Rejection } from '../queued-sink.js'
import type { SinkDefinition } from '../../rules/model/sink-spec.js'
import { typedSinkType, type Delivery, type SinkContext } from '../sink.js'
import { noDelay, withCredentials } from '../clients/mqtt-client.js'
import { mqttSinkSpec, type MqttSinkOptions } from '../specs/mqtt.js'
import { resolvedTls } from '../clients/pem.js'

const BATCH_TIMEOUT_MS = 30_000

class MqttSink extends QueuedSink {
  readonly type = 'mqtt'
  private readonly options: MqttSinkOptions
  private readonly clientId: string
  private readonly tls: ReturnType<typeof resolvedTls>
  private client: MqttClient | undefined

  constructor (definition: SinkDefinition, options: MqttSinkOptions, context: SinkContext) {
    super(definition, context)
    this.options = options
    this.clientId = options.client_id ?? `signalbox-${definition.name}-${process.pid}`
    this.tls = resolvedTls(options.tls, definition.baseDir)
  }

  protected async connect (): Promise<void> {
    const o = this.options
    const options: IClientOptions = {
      clientId: this.clientId,
      protocolVersion: o.protocol_version,
      clean: o.clean,
      reconnectPeriod: 1_000,
      connectTimeout: 5_000,
      // Our own queue bounds what waits while the broker is away; mqtt.js keeps only what is in flight.
      queueQoSZero: false
    }
    const client = connect(o.url, withCredentials(options, { username: o.username, password: o.password, tls: this.tls }))
    this.client = client
    client.on('connect', () => { noDelay(client); this.markUp() })
    client.on('close', () => { if (this.isUp()) this.markDown(`connection to ${o.url} closed`) })
    client.on('error', (err) => this.markDown(`${o.url}: ${err.message}`))
  }

  protected async deliver (batch: Delivery[]): Promise<Rejection[]> {
    const client = this.client
    if (client === undefined || !client.connected) throw new DeliveryError('not connected')
    const v5 = this.options.protocol_version === 5
    const results = await Promise.allSettled(batch.map((d) => publish(client, d, v5)))
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

/** With MQTT 5, a logged message's output carries its id as the user property `signalbox-id`. */
function publish (client: MqttClient, d: Delivery, v5: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no acknowledgement in ${BATCH_TIMEOUT_MS} ms`)), BATCH_TIMEOUT_MS)
    const options: IClientPublishOptions = { qos: d.qos, retain: d.retain }
    if (v5 && d.id !== undefined) options.properties = { userProperties: { 'signalbox-id': d.id } }
    client.publish(d.address, d.payload, options, (err) => {
      clearTimeout(timer)
      if (err === undefined || err === null) resolve()
      else reject(err)
    })
  })
}

export const mqttSinkType = typedSinkType<MqttSinkOptions>(mqttSinkSpec, (definition, options, context) => new MqttSink(definition, options, context))
