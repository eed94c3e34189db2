/**
 * The logger every layer writes through: the few methods it uses, which pino's logger has (the
 * service creates a pino one, engine/observe/logger.ts), so that adapters and rules depend on no logging
 * library.
 */
export type LogFn = (fields: object, message?: string) => void

export interface Logger {
  error: LogFn
  warn: LogFn
  info: LogFn
  debug: LogFn
  /** A logger that adds these fields to every line. */
  child: (fields: Record<string, unknown>) => Logger
}
