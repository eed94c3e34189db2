/**
 * Remote MQTT sink: republishes to another broker with mqtt.js, reconnecting on its own. A QoS 1/2
 * message counts as delivered when the broker acknowledges it (at-least-once: a batch cut by a
 * disconnect is sent again); QoS 0 counts once written to the socket (at-most-once past that).
 */
import { resolve } from 'node:path'
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import { DeliveryError, QueuedSink, type Rejection } from './queued-sink.js'
import type { Delivery, SinkContext, SinkDefinition, SinkOptionProblem, SinkType } from './sink.js'
import { noDelay, withCredentials } from './mqtt-client.js'
import { tlsFilesSchema } from './pem.js'

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

function validateMqtt (options: Record<string, unknown>): SinkOptionProblem[] {
  const problems: SinkOptionProblem[] = []
  const url = options.url
  // A missing or non-string url is the schema's to report.
  if (typeof url !== 'string') return problems
  try {
    const parsed = new URL(url)
    if (!['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ws:', 'wss:'].includes(parsed.protocol)) {
      problems.push({ path: ['url'], message: `'${url}': the scheme must be mqtt://, mqtts://, ws:// or wss://` })
    } else if (parsed.hostname === '') {
      problems.push({ path: ['url'], message: `'${url}' names no host` })
    }
  } catch {
    problems.push({ path: ['url'], message: `'${url}' is not a URL; write mqtt://host:1883` })
  }
  if (options.password !== undefined && options.username === undefined) problems.push({ path: ['password'], message: '`password` needs `username`' })
  const tls = options.tls as Record<string, unknown> | undefined
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined)) {
    problems.push({ path: ['tls'], message: 'a client certificate needs both `cert` and `key`' })
  }
  return problems
}

const qos = { enum: [0, 1, 2], description: 'QoS of the publish. Default: the sink\'s `qos`, else the QoS the message arrived with.' }
const retain = { type: 'boolean', description: 'Publish with the retain flag. Default: the sink\'s `retain`, else false.' }

export const mqttSinkType: SinkType = {
  type: 'mqtt',
  description: 'Republishes each message to another MQTT broker (mqtt.js), reconnecting on its own.',
  options: {
    url: { type: 'string', minLength: 1, description: 'Broker URL: mqtt://, mqtts:// (TLS), ws:// or wss://.', examples: ['mqtt://broker.example:1883'] },
    topic: { type: 'string', minLength: 1, description: 'Default topic template for outputs that give none. Without it, the message keeps its MQTT topic.' },
    qos,
    retain,
    client_id: { type: 'string', minLength: 1, description: 'Client id. Default: signalbox-<sink>-<pid>.' },
    username: { type: 'string' },
    password: { type: 'string', description: 'Password for `username`.' },
    protocol_version: { enum: [4, 5], default: 4, description: 'MQTT 3.1.1 (4) or 5.' },
    clean: { type: 'boolean', default: true, description: 'Start a clean session.' },
    tls: tlsFilesSchema('TLS for mqtts:// and wss://: PEM files relative to the rules file.')
  },
  required: ['url'],
  address: { field: 'topic', syntax: 'topic', fallback: 'topic' },
  outputOptions: {
    topic: { type: 'string', minLength: 1, description: 'Topic template on the remote broker, instead of the sink\'s `topic`.' },
    qos,
    retain
  },
  validate: validateMqtt,
  create: (definition, context) => new MqttSink(definition, context)
}
