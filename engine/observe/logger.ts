/**
 * Structured logs (pino) on stderr, so stdout stays free for command output: JSON lines for log
 * collectors, or readable lines (pino-pretty) when stderr is a terminal and a person is watching.
 */
import { pino, type Logger as PinoLogger } from 'pino'
import { PinoPretty } from 'pino-pretty'
import type { RuleLog } from '../../rules/compile/compile.js'

export type Logger = PinoLogger
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export function createLogger (level: LogLevel = 'info', pretty = process.stderr.isTTY === true && process.env.SIGNALBOX_LOG_FORMAT !== 'json'): Logger {
  const options = { level, base: { name: 'signalbox' } }
  if (pretty) return pino(options, PinoPretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' }))
  return pino(options, pino.destination({ fd: 2, sync: true }))
}

/** A rule's JsonLogic `log` as a log line (info), naming the rule. */
export function ruleLogTo (logger: Logger): RuleLog {
  return (rule, value) => logger.info({ rule, value }, 'rule log')
}
