/** The `--config` file: broker listener, rule paths and engine settings, validated like a rules file. */
import { dirname, resolve } from 'node:path'
import type { ValidateFunction } from 'ajv'
import { loadSource } from '../rules/load.js'
import type { RuleProblem } from '../rules/problems.js'
import { createValidator, validateSource } from '../rules/validate.js'
import { DEFAULT_DEAD_LETTER_PREFIX, DEFAULT_MAX_HOPS } from './engine.js'
import { LOG_LEVELS, type LogLevel } from './logger.js'

/** Settings for `signalbox run`, after defaults, the config file and flags are merged (flags win). */
export interface RunSettings {
  host: string
  port: number
  rules: string[]
  maxHops: number
  deadLetterPrefix: string
  drainTimeoutMs: number
  logLevel: LogLevel
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
    rules: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Rules files and directories, relative to the config file.' },
    max_hops: { type: 'integer', minimum: 1, maximum: 64, default: DEFAULT_MAX_HOPS, description: 'Republishes a message may pass through before it is dropped and counted.' },
    dead_letter_prefix: { type: 'string', minLength: 1, pattern: '^[^+#\\u0000]+$', default: DEFAULT_DEAD_LETTER_PREFIX, description: 'Dead letters go to <prefix>/<rule>.' },
    drain_timeout_ms: { type: 'integer', minimum: 0, maximum: 3600000, default: DEFAULT_DRAIN_TIMEOUT_MS, description: 'On SIGTERM/SIGINT, how long sinks may take to deliver what they hold; the rest is dropped and counted.' },
    log_level: { enum: [...LOG_LEVELS], default: 'info', description: 'Log level.' }
  }
}

interface RawConfig {
  listen?: { host?: string, port?: number }
  rules?: string[]
  max_hops?: number
  dead_letter_prefix?: string
  drain_timeout_ms?: number
  log_level?: LogLevel
}

let validator: ValidateFunction | undefined

/** Reads a config file; returns its settings (rule paths made absolute) or every problem in it. */
export function loadConfig (file: string): { ok: true, settings: Partial<RunSettings> } | { ok: false, problems: RuleProblem[] } {
  const loaded = loadSource(file)
  if (!loaded.ok) return loaded
  if (loaded.source.data === null || loaded.source.data === undefined) return { ok: true, settings: {} }
  validator ??= createValidator(configSchema)
  const problems = validateSource(loaded.source, validator)
  if (problems.length > 0) return { ok: false, problems }
  const raw = loaded.source.data as RawConfig
  const base = dirname(resolve(file))
  const settings: Partial<RunSettings> = {}
  if (raw.listen?.host !== undefined) settings.host = raw.listen.host
  if (raw.listen?.port !== undefined) settings.port = raw.listen.port
  if (raw.rules !== undefined) settings.rules = raw.rules.map((r) => resolve(base, r))
  if (raw.max_hops !== undefined) settings.maxHops = raw.max_hops
  if (raw.dead_letter_prefix !== undefined) settings.deadLetterPrefix = raw.dead_letter_prefix
  if (raw.drain_timeout_ms !== undefined) settings.drainTimeoutMs = raw.drain_timeout_ms
  if (raw.log_level !== undefined) settings.logLevel = raw.log_level
  return { ok: true, settings }
}
