/** The `--config` file: listeners, security, limits, rule paths and engine settings, validated like a rules file. */
import { dirname, resolve } from 'node:path'
import type { ValidateFunction } from 'ajv'
import { loadSource, problemAt, type SourceFile } from '../../rules/source/load.js'
import { sortProblems, type RuleProblem } from '../../rules/check/problems.js'
import { createValidator, validateSource } from '../../rules/check/validate.js'
import { DEFAULT_DEAD_LETTER_PREFIX, DEFAULT_MAX_HOPS } from '../runtime/engine.js'
import { Acl, aclSchema } from '../broker/acl.js'
import { limitsFrom, limitsSchema, type Limits, type RawLimits } from '../broker/limits.js'
import { listenerSchema, type ListenerSettings } from '../broker/listeners.js'
import { LOG_LEVELS, type LogLevel } from '../observe/logger.js'
import { DEFAULT_READY_GRACE_MS } from '../observe/readiness.js'
import { DEFAULT_SYS_INTERVAL_S } from '../observe/sys-reports.js'
import { tlsFilesSchema } from '../../adapters/clients/pem.js'
import { sourceUrlProblem } from '../../adapters/sources/sources.js'
import type { SourceSettings } from '../../adapters/sources/source.js'

function absolute (base: string, path: string | undefined): string | undefined {
  return path === undefined ? undefined : resolve(base, path)
}

/** Settings for `signalbox run`, after defaults, the config file and flags are merged (flags win). */
export interface RunSettings {
  /** The broker's listeners: `listeners:` from the config file, or one TCP listener from --host/--port/`listen:`. */
  listeners: ListenerSettings[]
  rules: string[]
  maxHops: number
  deadLetterPrefix: string
  drainTimeoutMs: number
  logLevel: LogLevel
  /** Explicit `allow_anonymous`; undefined: anonymous clients are allowed only when no users are configured. */
  allowAnonymous?: boolean
  /** The users file (absolute path). */
  usersFile?: string
  acl?: Acl
  limits: Limits
  /** Run the embedded broker: always without sources, and with them only when `embedded` is listed. */
  embedded: boolean
  /** External brokers / NATS servers to take messages from (--source, `sources:`). */
  sources: SourceSettings[]
  /** The monitoring endpoint (--http, `http:`); off when undefined. */
  http?: { host: string, port: number }
  /** Seconds between $SYS/signalbox reports on the embedded broker; 0 turns them off. */
  sysIntervalS: number
  /** How long a sink or source may be down before /readyz says not ready. */
  readyGraceMs: number
}

/** What the config file holds, before flags and defaults are merged in. */
export interface ConfigSettings extends Partial<Omit<RunSettings, 'listeners' | 'sources'>> {
  host?: string
  port?: number
  listeners?: ListenerSettings[]
  /** Source URLs and their options, as written (`embedded` included). */
  sources?: RawSource[]
  share?: string
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

/** `host:port` (or `[v6]:port`, or `:port` for loopback) of --http. */
export function parseHostPort (text: string): { host: string, port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text)
  if (m === null) return undefined
  const port = Number(m[3])
  if (port > 65535) return undefined
  const host = m[1] ?? m[2]
  return { host: host === '' ? DEFAULT_HOST : host, port }
}

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 1883
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000

/** Schema of the config file; descriptions double as documentation. */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: {
      type: 'object',
      description: 'The embedded broker\'s TCP listener.',
      additionalProperties: false,
      properties: {
        host: { type: 'string', minLength: 1, description: 'Address to bind.', default: DEFAULT_HOST },
        port: { type: 'integer', minimum: 0, maximum: 65535, description: 'TCP port; 0 picks a free one.', default: DEFAULT_PORT }
      }
    },
    listeners: { type: 'array', minItems: 1, items: listenerSchema, description: 'The broker\'s listeners (instead of `listen`): TCP, TLS, WebSocket, several at once.' },
    allow_anonymous: { type: 'boolean', description: 'Let clients connect without a user name. Default: true when no users are configured (and then every listener binds to loopback only), false otherwise.' },
    users_file: { type: 'string', minLength: 1, description: 'Users and scrypt password hashes (written by `signalbox passwd`), relative to the config file; reloaded when it changes.' },
    acl: aclSchema,
    limits: limitsSchema,
    rules: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Rules files and directories, relative to the config file.' },
    max_hops: { type: 'integer', minimum: 1, maximum: 64, default: DEFAULT_MAX_HOPS, description: 'Republishes a message may pass through before it is dropped and counted.' },
    dead_letter_prefix: { type: 'string', minLength: 1, pattern: '^[^+#\\u0000]+$', patternMessage: "may not hold '+', '#' or a NUL character (it is a topic prefix)", default: DEFAULT_DEAD_LETTER_PREFIX, description: 'Dead letters go to <prefix>/<rule>.' },
    drain_timeout_ms: { type: 'integer', minimum: 0, maximum: 3600000, default: DEFAULT_DRAIN_TIMEOUT_MS, description: 'On SIGTERM/SIGINT, how long sinks may take to deliver what they hold; the rest is dropped and counted.' },
    log_level: { enum: [...LOG_LEVELS], default: 'info', description: 'Log level.' },
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
    },
    share: { type: 'string', minLength: 1, pattern: '^[^/+#\\s]+$', patternMessage: "may not hold '/', '+', '#' or whitespace (it names a share group)", description: 'Share group: MQTT sources subscribe $share/<share>/<filter>, NATS sources join this queue group, so workers split the load.' },
    http: { type: 'string', minLength: 1, description: 'Serve /metrics, /healthz and /readyz on host:port.', examples: ['127.0.0.1:9100'] },
    sys_interval: { type: 'integer', minimum: 0, maximum: 86400, default: DEFAULT_SYS_INTERVAL_S, description: 'Seconds between $SYS/signalbox/ reports on the embedded broker; 0: none.' },
    ready_grace_ms: { type: 'integer', minimum: 0, maximum: 86400000, default: DEFAULT_READY_GRACE_MS, description: 'How long a sink or source may be down (retrying) before /readyz reports not ready.' }
  }
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

interface RawConfig {
  listen?: { host?: string, port?: number }
  listeners?: RawListener[]
  allow_anonymous?: boolean
  users_file?: string
  acl?: Parameters<typeof Acl.compile>[1]
  limits?: RawLimits
  rules?: string[]
  max_hops?: number
  dead_letter_prefix?: string
  drain_timeout_ms?: number
  log_level?: LogLevel
  sources?: RawSource[]
  share?: string
  http?: string
  sys_interval?: number
  ready_grace_ms?: number
}

let validator: ValidateFunction | undefined

/**
 * Reads a config file; returns its settings (rule paths made absolute) or every problem in it at
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
  // With problems, the rules it names (when that part is well formed) can still be checked.
  if (problems.length > 0) return { ok: false, problems: sortProblems(problems), rules: raw.rules !== undefined && wellFormed('rules') ? raw.rules.map((r) => resolve(base, r)) : undefined }
  const settings: ConfigSettings = {}
  if (raw.listeners !== undefined) {
    settings.listeners = raw.listeners.map((l) => ({
      type: l.type,
      host: l.host ?? DEFAULT_HOST,
      port: l.port,
      key: l.key === undefined ? undefined : resolve(base, l.key),
      cert: l.cert === undefined ? undefined : resolve(base, l.cert),
      ca: l.ca === undefined ? undefined : resolve(base, l.ca),
      requireClientCert: l.require_client_cert === true,
      path: l.path
    }))
  }
  if (raw.allow_anonymous !== undefined) settings.allowAnonymous = raw.allow_anonymous
  if (raw.users_file !== undefined) settings.usersFile = resolve(base, raw.users_file)
  if (raw.acl !== undefined) settings.acl = Acl.compile(loaded.source, raw.acl, ['acl']).acl
  settings.limits = limitsFrom(raw.limits)
  if (raw.listen?.host !== undefined) settings.host = raw.listen.host
  if (raw.listen?.port !== undefined) settings.port = raw.listen.port
  if (raw.rules !== undefined) settings.rules = raw.rules.map((r) => resolve(base, r))
  if (raw.max_hops !== undefined) settings.maxHops = raw.max_hops
  if (raw.dead_letter_prefix !== undefined) settings.deadLetterPrefix = raw.dead_letter_prefix
  if (raw.drain_timeout_ms !== undefined) settings.drainTimeoutMs = raw.drain_timeout_ms
  if (raw.log_level !== undefined) settings.logLevel = raw.log_level
  if (raw.sources !== undefined) {
    // TLS paths are relative to the config file: make them absolute now.
    settings.sources = raw.sources.map((r) => r.tls === undefined
      ? r
      : { ...r, tls: { ...r.tls, ca: absolute(base, r.tls.ca), cert: absolute(base, r.tls.cert), key: absolute(base, r.tls.key) } })
  }
  if (raw.share !== undefined) settings.share = raw.share
  if (raw.http !== undefined) settings.http = parseHostPort(raw.http)
  if (raw.sys_interval !== undefined) settings.sysIntervalS = raw.sys_interval
  if (raw.ready_grace_ms !== undefined) settings.readyGraceMs = raw.ready_grace_ms
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
  if (raw.http !== undefined && wellFormed('http') && parseHostPort(raw.http) === undefined) problems.push(problemAt(source, ['http'], 'BAD_VALUE', `'${raw.http}' is not host:port (e.g. 127.0.0.1:9100)`))
  return problems
}
