/** The `--config` file: listeners, security, limits, rule paths and engine settings, validated like a rules file. */
import { dirname, resolve } from 'node:path'
import type { ValidateFunction } from 'ajv'
import { loadSource, problemAt } from '../rules/load.js'
import type { RuleProblem } from '../rules/problems.js'
import { createValidator, validateSource } from '../rules/validate.js'
import { DEFAULT_DEAD_LETTER_PREFIX, DEFAULT_MAX_HOPS } from './engine.js'
import { Acl, aclSchema } from './acl.js'
import { limitsFrom, limitsSchema, type Limits, type RawLimits } from './limits.js'
import { listenerSchema, type ListenerSettings } from './listeners.js'
import { LOG_LEVELS, type LogLevel } from './logger.js'

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
}

/** What the config file holds, before flags and defaults are merged in. */
export interface ConfigSettings extends Partial<Omit<RunSettings, 'listeners'>> {
  host?: string
  port?: number
  listeners?: ListenerSettings[]
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
    dead_letter_prefix: { type: 'string', minLength: 1, pattern: '^[^+#\\u0000]+$', default: DEFAULT_DEAD_LETTER_PREFIX, description: 'Dead letters go to <prefix>/<rule>.' },
    drain_timeout_ms: { type: 'integer', minimum: 0, maximum: 3600000, default: DEFAULT_DRAIN_TIMEOUT_MS, description: 'On SIGTERM/SIGINT, how long sinks may take to deliver what they hold; the rest is dropped and counted.' },
    log_level: { enum: [...LOG_LEVELS], default: 'info', description: 'Log level.' }
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
}

let validator: ValidateFunction | undefined

/** Reads a config file; returns its settings (rule paths made absolute) or every problem in it. */
export function loadConfig (file: string): { ok: true, settings: ConfigSettings } | { ok: false, problems: RuleProblem[] } {
  const loaded = loadSource(file)
  if (!loaded.ok) return loaded
  if (loaded.source.data === null || loaded.source.data === undefined) return { ok: true, settings: {} }
  validator ??= createValidator(configSchema)
  const problems = validateSource(loaded.source, validator)
  if (problems.length > 0) return { ok: false, problems }
  const raw = loaded.source.data as RawConfig
  const base = dirname(resolve(file))
  const settings: ConfigSettings = {}
  if (raw.listen !== undefined && raw.listeners !== undefined) {
    return { ok: false, problems: [problemAt(loaded.source, ['listen'], 'BAD_VALUE', 'give `listen` (one TCP listener) or `listeners`, not both', { atKey: true })] }
  }
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
  if (raw.acl !== undefined) {
    const compiled = Acl.compile(loaded.source, raw.acl, ['acl'])
    if (compiled.problems.length > 0) return { ok: false, problems: compiled.problems }
    settings.acl = compiled.acl
  }
  settings.limits = limitsFrom(raw.limits)
  if (raw.listen?.host !== undefined) settings.host = raw.listen.host
  if (raw.listen?.port !== undefined) settings.port = raw.listen.port
  if (raw.rules !== undefined) settings.rules = raw.rules.map((r) => resolve(base, r))
  if (raw.max_hops !== undefined) settings.maxHops = raw.max_hops
  if (raw.dead_letter_prefix !== undefined) settings.deadLetterPrefix = raw.dead_letter_prefix
  if (raw.drain_timeout_ms !== undefined) settings.drainTimeoutMs = raw.drain_timeout_ms
  if (raw.log_level !== undefined) settings.logLevel = raw.log_level
  return { ok: true, settings }
}
