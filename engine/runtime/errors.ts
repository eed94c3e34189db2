/** Runtime errors. Per-message failures are codes the engine counts and dead-letters, never exceptions through the router. */

/** Why a rule could not handle one message; counted, logged once per class, and dead-lettered. */
export type FailureCode =
  | 'PAYLOAD_NOT_JSON'
  | 'PAYLOAD_TOO_DEEP'
  | 'EXPRESSION_ERROR'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOPIC_REFUSED'
  | 'PUBLISH_FAILED'
  /** A sink's destination refused the output for good (a database's data error, an HTTP 400). */
  | 'SINK_REJECTED'

/**
 * Why `signalbox run` (or another command) could not start: a mistake of the user's or of the
 * machine's, printed as `signalbox: CODE: message` with exit code 1, never a stack. Anything else
 * that stops a command is a bug: the CLI prints its stack and exits 70 (docs/error-codes.md).
 */
export type StartupCode =
  | 'USAGE'
  | 'PORT_IN_USE'
  | 'ADDRESS_NOT_LOCAL'
  | 'PORT_PRIVILEGED'
  | 'UNKNOWN_HOST'
  | 'LISTENER_FAILED'
  | 'LISTENER_TLS'
  | 'NOT_PATCHED'
  | 'SINK_START'
  | 'SOURCE_START'
  | 'HTTP_START'
  | 'USERS_FILE'
  | 'DATA_DIR'

export class StartupError extends Error {
  constructor (message: string, readonly code: StartupCode, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StartupError'
  }
}

/** The broker could not start: the port is taken, the address is not local, permission is denied, a TLS file is wrong. */
export class BrokerStartError extends StartupError {
  constructor (message: string, options?: { cause?: unknown, code?: StartupCode }) {
    super(message, options?.code ?? 'LISTENER_FAILED', options)
    this.name = 'BrokerStartError'
  }
}

/** A user mistake on the command line or in a config file: printed as one line, never a stack trace. */
export class UsageError extends StartupError {
  constructor (message: string, options?: { cause?: unknown, code?: StartupCode }) {
    super(message, options?.code ?? 'USAGE', options)
    this.name = 'UsageError'
  }
}

/** A sink could not start (an unreadable TLS file): the run stops with the sink's name and the reason. */
export class SinkStartError extends StartupError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, 'SINK_START', options)
    this.name = 'SinkStartError'
  }
}

/**
 * Whether an error comes from the machine (a file that cannot be read, an address refused): some
 * error in its cause chain has a system error code (ENOENT, EACCES, ECONNREFUSED…). Such a failure
 * is the user's to fix; any other is a bug.
 */
export function causedByTheSystem (err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    if (typeof (e as NodeJS.ErrnoException).code === 'string' && /^E[A-Z_]+$/.test((e as NodeJS.ErrnoException).code!)) return true
  }
  return false
}
