/** The `--config` file: listeners, security, limits, rule paths and engine settings, validated like a rules file. */
import { dirname, resolve } from 'node:path'
import type { ValidateFunction } from 'ajv'
import { loadSource, problemAt, type SourceFile } from '../../rules/source/load.js'
import { sortProblems, type RuleProblem } from '../../rules/check/problems.js'
import { createValidator, validateSource } from '../../rules/check/validate.js'
import { Acl, aclSchema } from '../broker/acl.js'
import { DEFAULT_LIMITS, defaultMaxPacketBytes, type Limits } from '../broker/limits.js'
import { listenerSchema, type ListenerSettings } from '../broker/listeners.js'
import { DEFAULT_HOST, fromFile, LIMIT_SETTINGS, merged, schemaProperties, SETTINGS, valueAt, type Setting, type SettingValues } from './settings.js'
import { tlsFilesSchema } from '../../adapters/clients/pem.js'
import { sourceUrlProblem } from '../../adapters/sources/sources.js'
import type { SourceSettings } from '../../adapters/sources/source.js'

function absolute (base: string, path: string | undefined): string | undefined {
  return path === undefined ? undefined : resolve(base, path)
}

/** Settings for `signalbox run`, after defaults, the config file and flags are merged (flags win). */
export interface RunSettings extends Omit<SettingValues, 'host' | 'port' | 'share'> {
  /** The broker's listeners: `listeners:` from the config file, or one TCP listener from --host/--port/`listen:`. */
  listeners: ListenerSettings[]
  acl?: Acl
  limits: Limits
  /** Run the embedded broker: always without sources, and with them only when `embedded` is listed. */
  embedded: boolean
  /** External brokers / NATS servers to take messages from (--source, `sources:`), share group filled in. */
  sources: SourceSettings[]
}

/** What the config file holds, before flags and defaults are merged in. */
export interface ConfigSettings extends Partial<SettingValues> {
  listeners?: ListenerSettings[]
  acl?: Acl
  limits?: Limits
  /** Source URLs and their options, as written (`embedded` included). */
  sources?: RawSource[]
}

/** A source as the config file (or --source) gives it. */
export interface RawSource {
  url: string
  client_id?: string
  username?: string
  password?: string
  token?: string
  qos?: 0 | 1 | 2
  session_expiry?: number
  tls?: { ca?: string, cert?: string, key?: string, reject_unauthorized?: boolean }
}

export const EMBEDDED_SOURCE = 'embedded'
export const DEFAULT_SOURCE_QOS = 1

/**
 * Sources with defaults filled in; `embedded` is left out (it is RunSettings.embedded). TLS paths
 * are taken as given: loadConfig has made them absolute, and --source has none.
 */
export function sourceSettings (raw: RawSource[], share: string | undefined): SourceSettings[] {
  return raw.filter((r) => r.url !== EMBEDDED_SOURCE).map((r) => ({
    url: r.url,
    share,
    clientId: r.client_id,
    // Credentials may be in the URL (mqtt://user:pass@host); explicit options win.
    username: r.username ?? urlPart(r.url, 'username'),
    password: r.password ?? urlPart(r.url, 'password'),
    token: r.token,
    qos: r.qos ?? DEFAULT_SOURCE_QOS,
    sessionExpiry: r.session_expiry ?? 0,
    tls: r.tls === undefined
      ? undefined
      : { ca: r.tls.ca, cert: r.tls.cert, key: r.tls.key, rejectUnauthorized: r.tls.reject_unauthorized !== false }
  }))
}

function urlPart (url: string, part: 'username' | 'password'): string | undefined {
  const value = new URL(url)[part]
  return value === '' ? undefined : decodeURIComponent(value)
}

/** Schema of the config file: the settings tables' keys, and the structured parts beside them. */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...schemaProperties([SETTINGS, LIMIT_SETTINGS], { listen: 'The embedded broker\'s TCP listener.', limits: 'Limits on what clients may send.', wal: 'The write-ahead log (with `durability` process or power).' }),
    listeners: { type: 'array', minItems: 1, items: listenerSchema, description: 'The broker\'s listeners (instead of `listen`): TCP, TLS, WebSocket, several at once.' },
    acl: aclSchema,
    sources: {
      type: 'array',
      minItems: 1,
      description: 'Take messages from these instead of (or, listing `embedded`, besides) the embedded broker.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        properties: {
          url: { type: 'string', minLength: 1, description: 'mqtt://, mqtts://, ws://, wss:// (an MQTT 5 broker), nats:// or tls:// (NATS; tls:// requires TLS), or `embedded`.' },
          client_id: { type: 'string', minLength: 1, description: 'MQTT client id (give each worker its own; needed for session_expiry) or NATS connection name.' },
          username: { type: 'string', minLength: 1 },
          password: { type: 'string' },
          token: { type: 'string', minLength: 1, description: 'NATS token.' },
          qos: { enum: [0, 1, 2], default: DEFAULT_SOURCE_QOS, description: 'MQTT: QoS of the subscriptions.' },
          session_expiry: { type: 'integer', minimum: 0, maximum: 4294967295, default: 0, description: 'MQTT: seconds the broker keeps the session (and queues for it) after a disconnect; 0 starts clean.' },
          tls: tlsFilesSchema('TLS: PEM files relative to the config file.')
        }
      }
    }
  }
}

/** The structured parts of the config file as written (the settings tables read the rest). */
interface RawConfig {
  listen?: object
  listeners?: RawListener[]
  acl?: Parameters<typeof Acl.compile>[1]
  sources?: RawSource[]
}

interface RawListener {
  type: ListenerSettings['type']
  host?: string
  port: number
  key?: string
  cert?: string
  ca?: string
  require_client_cert?: boolean
  path?: string
}

let validator: ValidateFunction | undefined

/**
 * Reads a config file; returns its settings (paths made absolute) or every problem in it at
 * once: the schema's, and the checks beyond it of each part the schema found well formed.
 */
export function loadConfig (file: string): { ok: true, settings: ConfigSettings } | { ok: false, problems: RuleProblem[], rules?: string[] } {
  const loaded = loadSource(file)
  if (!loaded.ok) return loaded
  if (loaded.source.data === null || loaded.source.data === undefined) return { ok: true, settings: {} }
  validator ??= createValidator(configSchema)
  const problems = validateSource(loaded.source, validator)
  const wellFormed = (key: string): boolean => !(validator!.errors ?? []).some((e) => e.instancePath === '' ? (e.params as { additionalProperty?: string, missingProperty?: string }).additionalProperty === key : e.instancePath.split('/')[1] === key)
  const raw = loaded.source.data as RawConfig
  problems.push(...checksBeyondSchema(loaded.source, raw, wellFormed))
  const base = dirname(resolve(file))
  const rules = wellFormed('rules') ? fromFile({ rules: SETTINGS.rules }, raw, base).rules : undefined
  // With problems, the rules it names (when that part is well formed) can still be checked.
  if (problems.length > 0) return { ok: false, problems: sortProblems(problems), rules }
  const settings: ConfigSettings = fromFile(SETTINGS, raw, base)
  if (raw.listeners !== undefined) {
    settings.listeners = raw.listeners.map((l) => ({
      type: l.type,
      host: l.host ?? DEFAULT_HOST,
      port: l.port,
      key: absolute(base, l.key),
      cert: absolute(base, l.cert),
      ca: absolute(base, l.ca),
      requireClientCert: l.require_client_cert === true,
      path: l.path
    }))
  }
  if (raw.acl !== undefined) settings.acl = Acl.compile(loaded.source, raw.acl, ['acl']).acl
  const limits = fromFile(LIMIT_SETTINGS, raw, base)
  // The packet limit follows the payload limit unless it is given.
  settings.limits = merged(LIMIT_SETTINGS, {}, { ...limits, maxPacketBytes: limits.maxPacketBytes ?? defaultMaxPacketBytes(limits.maxPayloadBytes ?? DEFAULT_LIMITS.maxPayloadBytes) })
  if (raw.sources !== undefined) {
    // TLS paths are relative to the config file: make them absolute now.
    settings.sources = raw.sources.map((r) => r.tls === undefined
      ? r
      : { ...r, tls: { ...r.tls, ca: absolute(base, r.tls.ca), cert: absolute(base, r.tls.cert), key: absolute(base, r.tls.key) } })
  }
  return { ok: true, settings }
}

/** The checks a schema cannot make, of each part it found well formed (so one run reports them all). */
function checksBeyondSchema (source: SourceFile, raw: RawConfig, wellFormed: (key: string) => boolean): RuleProblem[] {
  const problems: RuleProblem[] = []
  if (raw.listen !== undefined && raw.listeners !== undefined) problems.push(problemAt(source, ['listen'], 'BAD_VALUE', 'give `listen` (one TCP listener) or `listeners`, not both', { atKey: true }))
  if (raw.acl !== undefined && wellFormed('acl')) problems.push(...Acl.compile(source, raw.acl, ['acl']).problems)
  if (raw.sources !== undefined && wellFormed('sources')) {
    raw.sources.forEach((s, i) => {
      const why = s.url === EMBEDDED_SOURCE ? undefined : sourceUrlProblem(s.url)
      if (why !== undefined) problems.push(problemAt(source, ['sources', i, 'url'], 'BAD_VALUE', why))
    })
  }
  for (const s of Object.values(SETTINGS) as Array<Setting<unknown>>) {
    const value = valueAt(raw, s.key)
    const why = value === undefined || s.check === undefined || !wellFormed(s.key.split('.')[0]) ? undefined : s.check(value)
    if (why !== undefined) problems.push(problemAt(source, s.key.split('.'), 'BAD_VALUE', why))
  }
  return problems
}
