/** Structured logs (pino): JSON lines on stderr, so stdout stays free for command output. */
import { pino, type Logger as PinoLogger } from 'pino'

export type Logger = PinoLogger
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export function createLogger (level: LogLevel = 'info'): Logger {
  return pino({ level, base: { name: 'signalbox' } }, pino.destination({ fd: 2, sync: true }))
}
