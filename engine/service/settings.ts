/**
 * Every scalar setting of `signalbox run` in one table: its config key, its flag, its schema (type
 * and range), its default and what it means. The config schema, the commander options and their
 * checks, the merge of flags over the file over the defaults, and the settings reference in
 * docs/operations.md are all made from it, so adding a setting is one entry. Structured parts of
 * the config file (listeners, acl, sources) keep their own schemas beside it (config.ts).
 */
import { resolve } from 'node:path'
import { DEFAULT_DEAD_LETTER_PREFIX, DEFAULT_MAX_HOPS } from '../runtime/engine.js'
import { BROKER_MAX_TOPIC_LEVELS, DEFAULT_LIMITS, type Limits } from '../broker/limits.js'
import { LOG_LEVELS, type LogLevel } from '../observe/logger.js'
import { DEFAULT_READY_GRACE_MS } from '../observe/readiness.js'
import { DEFAULT_SYS_INTERVAL_S } from '../observe/sys-reports.js'

export interface Setting<T> {
  /** The key in the config file; dotted when nested (`listen.port`). */
  key: string
  /** The flag of `signalbox run`, in commander's syntax (`-p, --port <port>`); none when only the file sets it. */
  flag?: string
  /** JSON Schema of the value in the config file (without `default` and `description`, added from here). */
  schema: Record<string, unknown>
  default: T
  /** How the docs and `--help` show the default when it is not the value itself. */
  defaultText?: string
  /** One sentence: the config schema's description, the flag's help and the reference. */
  description: string
  /** A check the schema cannot make; the reason a value is bad, or undefined. Run on the file's value and the flag's. */
  check?: (value: unknown) => string | undefined
  /** The file's value as the setting (a path relative to the config file made absolute). */
  fromFile?: (value: never, baseDir: string) => T
  /** A flag's text as the setting, when the schema alone cannot say (integers, enums and patterns can). */
  fromFlag?: (text: string) => T
}

function setting<T> (s: Setting<T>): Setting<T> {
  return s
}

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 1883
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000

export interface HostPort { host: string, port: number }

/** `host:port` (or `[v6]:port`, or `:port` for loopback) of --http. */
export function parseHostPort (text: string): HostPort | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text)
  if (m === null) return undefined
  const port = Number(m[3])
  if (port > 65535) return undefined
  const host = m[1] ?? m[2]
  return { host: host === '' ? DEFAULT_HOST : host, port }
}

const hostPortProblem = (value: unknown): string | undefined =>
  typeof value === 'string' && parseHostPort(value) === undefined ? 'give host:port, e.g. 127.0.0.1:9100 (port 0 picks a free one)' : undefined

const paths = (value: string[], base: string): string[] => value.map((p) => resolve(base, p))

/** The settings of `signalbox run`, by the property they set. */
export const SETTINGS = {
  host: setting<string>({ key: 'listen.host', flag: '--host <host>', schema: { type: 'string', minLength: 1 }, default: DEFAULT_HOST, description: 'Address the embedded broker binds (its single TCP listener; see `listeners` for more).' }),
  port: setting<number>({ key: 'listen.port', flag: '-p, --port <port>', schema: { type: 'integer', minimum: 0, maximum: 65535 }, default: DEFAULT_PORT, description: 'TCP port of the embedded broker; 0 picks a free one (the log says which).' }),
  rules: setting<string[]>({ key: 'rules', schema: { type: 'array', items: { type: 'string', minLength: 1 } }, default: [], defaultText: 'none', description: 'Rules files and directories, relative to the config file; rules on the command line replace them.', fromFile: paths }),
  maxHops: setting<number>({ key: 'max_hops', flag: '--max-hops <n>', schema: { type: 'integer', minimum: 1, maximum: 64 }, default: DEFAULT_MAX_HOPS, description: 'Republishes a message may pass through before it is dropped and counted.' }),
  deadLetterPrefix: setting<string>({ key: 'dead_letter_prefix', flag: '--dead-letter-prefix <topic>', schema: { type: 'string', minLength: 1, pattern: '^[^+#\\u0000]+$', patternMessage: "may not hold '+', '#' or a NUL character (it is a topic prefix)" }, default: DEFAULT_DEAD_LETTER_PREFIX, description: 'Dead letters go to <prefix>/<rule>.' }),
  drainTimeoutMs: setting<number>({ key: 'drain_timeout_ms', flag: '--drain-timeout <ms>', schema: { type: 'integer', minimum: 0, maximum: 3_600_000 }, default: DEFAULT_DRAIN_TIMEOUT_MS, description: 'On SIGTERM/SIGINT, how long sinks may take to deliver what they hold; the rest is dropped and counted (`shutdown`).' }),
  logLevel: setting<LogLevel>({ key: 'log_level', flag: '--log-level <level>', schema: { enum: [...LOG_LEVELS] }, default: 'info', description: 'Log level; logs go to stderr, readable lines on a terminal and JSON lines otherwise.' }),
  allowAnonymous: setting<boolean | undefined>({ key: 'allow_anonymous', flag: '--allow-anonymous', schema: { type: 'boolean' }, default: undefined, defaultText: 'true without users (listeners then bind to loopback only), false with them', description: 'Let clients connect without a user name, on every address.' }),
  usersFile: setting<string | undefined>({ key: 'users_file', schema: { type: 'string', minLength: 1 }, default: undefined, defaultText: 'none', description: 'Users and scrypt password hashes (written by `signalbox passwd`), relative to the config file; reloaded when it changes.', fromFile: (path: string, base) => resolve(base, path) }),
  share: setting<string | undefined>({ key: 'share', flag: '--share <group>', schema: { type: 'string', minLength: 1, pattern: '^[^/+#\\s]+$', patternMessage: "may not hold '/', '+', '#' or whitespace (it names a share group)" }, default: undefined, defaultText: 'none', description: 'Split the load of external sources with other workers: MQTT sources subscribe $share/<share>/<filter>, NATS sources join this queue group.' }),
  http: setting<HostPort | undefined>({ key: 'http', flag: '--http <host:port>', schema: { type: 'string', minLength: 1, examples: ['127.0.0.1:9100'] }, default: undefined, defaultText: 'off', description: 'Serve /metrics (Prometheus), /healthz and /readyz on host:port; port 0 picks a free one.', check: hostPortProblem, fromFile: (text: string) => parseHostPort(text), fromFlag: parseHostPort }),
  sysIntervalS: setting<number>({ key: 'sys_interval', flag: '--sys-interval <s>', schema: { type: 'integer', minimum: 0, maximum: 86_400 }, default: DEFAULT_SYS_INTERVAL_S, description: 'Seconds between $SYS/signalbox/ reports on the embedded broker; 0 for none.' }),
  durability: setting<'none' | 'process' | 'power'>({ key: 'durability', flag: '--durability <mode>', schema: { enum: ['none', 'process', 'power'] }, default: 'process', description: 'What an acknowledged QoS 1 or 2 publish to the embedded broker survives before its outputs are delivered: `process` (written to the write-ahead log before the ack: the process dying), `power` (and synced to disk: a power cut), `none` (kept in memory only). With `process` or `power` the broker\'s retained messages, sessions and QoS 2 state are kept on disk too.' }),
  dataDir: setting<string>({ key: 'data_dir', flag: '--data-dir <dir>', schema: { type: 'string', minLength: 1 }, default: 'signalbox-data', description: 'Where signalbox keeps its state (the write-ahead log in its wal/), created on first run; relative to the working directory, or in a config file to the config file.', fromFile: (path: string, base) => resolve(base, path) }),
  walMaxBytes: setting<number>({ key: 'wal.max_bytes', schema: { type: 'integer', minimum: 1_048_576, maximum: 1_099_511_627_776 }, default: 256 * 1024 * 1024, description: 'Most bytes the write-ahead log may hold; when outputs are not delivered and it fills, the broker holds acks (publishers wait) instead of dropping.' }),
  readyGraceMs: setting<number>({ key: 'ready_grace_ms', schema: { type: 'integer', minimum: 0, maximum: 86_400_000 }, default: DEFAULT_READY_GRACE_MS, description: 'How long a sink or source may be down (retrying) before /readyz reports not ready.' })
} as const

/** The limits on what clients may send (`limits:` in the config file), by their Limits property. */
export const LIMIT_SETTINGS: { [K in keyof Limits]: Setting<number> } = {
  maxPayloadBytes: setting({ key: 'limits.max_payload_bytes', schema: { type: 'integer', minimum: 1, maximum: 268435455 }, default: DEFAULT_LIMITS.maxPayloadBytes, description: 'Largest payload a client may publish; larger publishes are dropped and counted.' }),
  maxTopicLength: setting({ key: 'limits.max_topic_length', schema: { type: 'integer', minimum: 1, maximum: 65535 }, default: DEFAULT_LIMITS.maxTopicLength, description: 'Longest topic, in characters.' }),
  maxTopicLevels: setting({ key: 'limits.max_topic_levels', schema: { type: 'integer', minimum: 1, maximum: BROKER_MAX_TOPIC_LEVELS }, default: DEFAULT_LIMITS.maxTopicLevels, description: 'Most levels in a topic or filter.' }),
  maxJsonDepth: setting({ key: 'limits.max_json_depth', schema: { type: 'integer', minimum: 1, maximum: 10000 }, default: DEFAULT_LIMITS.maxJsonDepth, description: 'Deepest JSON nesting the rules decode; a deeper payload is dead-lettered (PAYLOAD_TOO_DEEP) by rules that read it.' }),
  clientDrainTimeoutMs: setting({ key: 'limits.client_drain_timeout_ms', schema: { type: 'integer', minimum: 100, maximum: 600000 }, default: DEFAULT_LIMITS.clientDrainTimeoutMs, description: 'A subscriber that stops reading is disconnected after this long, so it cannot stall delivery to others.' }),
  maxPacketBytes: setting({ key: 'limits.max_packet_bytes', schema: { type: 'integer', minimum: 64, maximum: 268435460 }, default: DEFAULT_LIMITS.maxPacketBytes, defaultText: '1 MiB, or max_payload_bytes plus 64 KiB when that is more', description: 'Largest MQTT packet a client may send, before or after authentication; a larger one closes the connection as soon as its fixed header is read, before its bytes are buffered.' }),
  connectTimeoutMs: setting({ key: 'limits.connect_timeout_ms', schema: { type: 'integer', minimum: 100, maximum: 600000 }, default: DEFAULT_LIMITS.connectTimeoutMs, description: 'A connection that has not sent its CONNECT within this long is closed.' }),
  maxQueuedMessages: setting({ key: 'limits.max_queued_messages', schema: { type: 'integer', minimum: 1, maximum: 10000000 }, default: DEFAULT_LIMITS.maxQueuedMessages, description: 'Messages a subscriber may leave unread (written since its connection last drained); past it, deliveries to that subscriber are dropped and counted, whatever their QoS, and others are not delayed.' }),
  maxQueuedBytes: setting({ key: 'limits.max_queued_bytes', schema: { type: 'integer', minimum: 1024, maximum: 4294967296 }, default: DEFAULT_LIMITS.maxQueuedBytes, description: 'Bytes a subscriber may leave unread in its connection\'s buffer; past it, deliveries to it are dropped and counted.' })
}

type Defaults = { [K in keyof typeof SETTINGS]: typeof SETTINGS[K]['default'] }
/** The settings' values; those without a default (undefined) are optional. */
export type SettingValues =
  { [K in keyof Defaults as undefined extends Defaults[K] ? never : K]: Defaults[K] } &
  { [K in keyof Defaults as undefined extends Defaults[K] ? K : never]?: Defaults[K] }

type AnySetting = Setting<unknown>
type Table = Record<string, AnySetting>

/** The schema of one setting, with its default (when it is a value) and description. */
function propertySchema (s: AnySetting): Record<string, unknown> {
  const withDefault = s.defaultText === undefined && s.default !== undefined ? { default: s.default } : {}
  const description = s.defaultText === undefined ? s.description : `${s.description} Default: ${s.defaultText}.`
  return { ...s.schema, ...withDefault, description }
}

/**
 * JSON Schema properties of the tables' keys, nested objects for dotted keys; `describe` gives the
 * description of each nested object (`listen`, `limits`).
 */
export function schemaProperties (tables: Table[], describe: Record<string, string>): Record<string, Record<string, unknown>> {
  const properties: Record<string, Record<string, unknown>> = {}
  for (const table of tables) {
    for (const s of Object.values(table)) {
      const [head, ...rest] = s.key.split('.')
      if (rest.length === 0) {
        properties[head] = propertySchema(s)
        continue
      }
      properties[head] ??= { type: 'object', additionalProperties: false, description: describe[head], properties: {} }
      ;(properties[head].properties as Record<string, unknown>)[rest.join('.')] = propertySchema(s)
    }
  }
  return properties
}

/** The value at a dotted key of the parsed config file. */
export function valueAt (data: unknown, key: string): unknown {
  let at = data
  for (const part of key.split('.')) {
    if (at === null || typeof at !== 'object') return undefined
    at = (at as Record<string, unknown>)[part]
  }
  return at
}

/** The settings a config file gives (only those it gives), by property. */
export function fromFile<T extends Table> (table: T, data: unknown, baseDir: string): Partial<{ [K in keyof T]: T[K]['default'] }> {
  const values: Record<string, unknown> = {}
  for (const [property, s] of Object.entries(table)) {
    const raw = valueAt(data, s.key)
    if (raw !== undefined) values[property] = s.fromFile === undefined ? raw : s.fromFile(raw as never, baseDir)
  }
  return values as Partial<{ [K in keyof T]: T[K]['default'] }>
}

/** Flag text to a value, or the reason it is bad; the schema's type, range and pattern decide. */
export function parseFlag (s: AnySetting, text: string): { value: unknown } | { problem: string } {
  const problem = s.check?.(text)
  if (problem !== undefined) return { problem }
  if (s.fromFlag !== undefined) {
    const value = s.fromFlag(text)
    return value === undefined ? { problem: `'${text}' is not valid` } : { value }
  }
  const schema = s.schema as { type?: string, minimum?: number, maximum?: number, pattern?: string, patternMessage?: string }
  if (schema.type === 'integer') {
    const n = Number(text)
    if (text.trim() === '' || !Number.isInteger(n) || n < (schema.minimum ?? -Infinity) || n > (schema.maximum ?? Infinity)) return { problem: `a whole number from ${schema.minimum ?? '-∞'} to ${schema.maximum ?? '∞'}` }
    return { value: n }
  }
  if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(text)) return { problem: schema.patternMessage ?? `must match ${schema.pattern}` }
  return { value: text }
}

/** How the docs and --help show a setting's default. */
export function defaultText (s: AnySetting): string {
  if (s.defaultText !== undefined) return s.defaultText
  return Array.isArray(s.default) ? s.default.join(', ') : String(s.default)
}

/** A Markdown table of every key of the config file the tables hold: the reference in docs/operations.md. */
export function renderSettingsReference (tables: Table[]): string {
  const rows = tables.flatMap((t) => Object.values(t)).map((s) => {
    const flag = s.flag === undefined ? '' : `\`${s.flag.split(', ').pop()!.split(' ')[0]}\``
    return `| \`${s.key}\` | ${typeText(s.schema)} | ${s.defaultText ?? `\`${defaultText(s)}\``} | ${flag} | ${s.description} |`
  })
  return ['| key | type | default | flag | meaning |', '| --- | --- | --- | --- | --- |', ...rows].join('\n') + '\n'
}

function typeText (schema: Record<string, unknown>): string {
  if (Array.isArray(schema.enum)) return schema.enum.map((e) => `\`${String(e)}\``).join(', ')
  if (schema.type === 'integer') return `integer ${String(schema.minimum)}–${String(schema.maximum)}`
  if (schema.type === 'array') return 'list of paths'
  return String(schema.type)
}

/** The value of each setting: the flag's, else the file's, else the default. */
export function merged<T extends Table> (table: T, flags: Partial<Record<keyof T, unknown>>, file: Partial<Record<keyof T, unknown>>): { [K in keyof T]: T[K]['default'] } {
  const values: Record<string, unknown> = {}
  for (const [property, s] of Object.entries(table)) values[property] = flags[property] ?? file[property] ?? s.default
  return values as { [K in keyof T]: T[K]['default'] }
}
