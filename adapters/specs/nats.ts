/** The NATS sink's spec: its options, its subject, and the checks of server addresses and credentials. */
import type { SinkOptionProblem, SinkSpec } from '../../rules/model/sink-spec.js'
import { mixedSchemesProblem, NATS_SCHEMES } from '../clients/nats-servers.js'
import { tlsFilesSchema, type TlsFileOptions } from '../clients/pem.js'

export const DEFAULT_NATS_SERVER = 'nats://127.0.0.1:4222'
export const DEFAULT_ACK_TIMEOUT_MS = 5_000

/** The servers option as a list (a single string, a list, or the default). */
export function normaliseServers (value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.map(String)
  return [DEFAULT_NATS_SERVER]
}

function validateNats (options: Record<string, unknown>): SinkOptionProblem[] {
  const problems: SinkOptionProblem[] = []
  normaliseServers(options.servers).forEach((server, i) => {
    const path = Array.isArray(options.servers) ? ['servers', i] : ['servers']
    const url = /^[a-z]+:\/\//i.test(server) ? server : `nats://${server}`
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      problems.push({ path, message: `'${server}' is not a server address; write nats://host:port` })
      return
    }
    if (!NATS_SCHEMES.includes(parsed.protocol)) problems.push({ path, message: `'${server}': the scheme must be nats:// or tls://` })
  })
  const mixed = mixedSchemesProblem(normaliseServers(options.servers))
  if (mixed !== undefined) problems.push({ path: ['servers'], message: mixed })
  if (options.user !== undefined && options.pass === undefined) problems.push({ path: ['user'], message: '`user` needs `pass`' })
  if (options.token !== undefined && options.user !== undefined) problems.push({ path: ['token'], message: 'give `token` or `user`/`pass`, not both' })
  const tls = options.tls as Record<string, unknown> | undefined
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined)) {
    problems.push({ path: ['tls'], message: 'a client certificate needs both `cert` and `key`' })
  }
  return problems
}

const tlsFiles = tlsFilesSchema('TLS: PEM files, relative to the rules file. `ca` to trust a private CA; `cert` and `key` for a client certificate.')

/** The NATS sink's options, as the schema below declares them (defaults filled in). */
export interface NatsSinkOptions {
  servers: string | string[]
  subject?: string
  jetstream: boolean
  ack_timeout_ms: number
  user?: string
  pass?: string
  token?: string
  client_name: string
  tls?: TlsFileOptions
}

export const natsSinkSpec: SinkSpec = {
  type: 'nats',
  description: 'Publishes each message to a NATS subject (core NATS, or JetStream with acks). Headers carry the MQTT topic and the rule name.',
  options: {
    servers: {
      anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }],
      default: DEFAULT_NATS_SERVER,
      description: 'Server URL, or a list of them (nats:// or tls://).',
      examples: ['nats://127.0.0.1:4222']
    },
    subject: {
      type: 'string',
      minLength: 1,
      description: 'Default subject template for outputs that give none. Without it, the subject is the MQTT topic with `/` turned into `.`.',
      examples: ['alerts.{room}']
    },
    jetstream: { type: 'boolean', default: false, description: 'Publish through JetStream and wait for the stream\'s ack (at-least-once into a stream that captures the subject).' },
    ack_timeout_ms: { type: 'integer', minimum: 100, maximum: 600000, default: DEFAULT_ACK_TIMEOUT_MS, description: 'How long to wait for a JetStream ack before retrying.' },
    user: { type: 'string', description: 'User name (with `pass`).' },
    pass: { type: 'string', description: 'Password for `user`.' },
    token: { type: 'string', description: 'Authentication token.' },
    client_name: { type: 'string', minLength: 1, default: 'signalbox', description: 'Connection name the server shows.' },
    tls: tlsFiles
  },
  address: { field: 'subject', syntax: 'subject', fallback: 'subject-from-topic' },
  outputOptions: {
    subject: { type: 'string', minLength: 1, description: 'NATS subject template, e.g. `alerts.{room}`. A value holding `.`, `*`, `>` or whitespace refuses the output (a `#name` capture\'s `/` become `.`).' }
  },
  shorthand: { defaults: { servers: DEFAULT_NATS_SERVER } },
  validate: validateNats
}
