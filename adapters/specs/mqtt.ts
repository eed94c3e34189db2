/** The remote MQTT sink's spec: its options, its topic, and the checks of its URL and credentials. */
import type { SinkOptionProblem, SinkSpec } from '../../rules/model/sink-spec.js'
import { tlsFilesSchema, type TlsFileOptions } from '../clients/pem.js'

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

/** The remote MQTT sink's options, as the schema below declares them (defaults filled in). */
export interface MqttSinkOptions {
  url: string
  topic?: string
  qos?: 0 | 1 | 2
  retain?: boolean
  client_id?: string
  username?: string
  password?: string
  protocol_version: 4 | 5
  clean: boolean
  tls?: TlsFileOptions
}

export const mqttSinkSpec: SinkSpec = {
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
  validate: validateMqtt
}
