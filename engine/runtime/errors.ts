/** Runtime errors. Per-message failures are codes the engine counts and dead-letters, never exceptions through the router. */

/** Why a rule could not handle one message; counted, logged once per class, and dead-lettered. */
export type FailureCode =
  | 'PAYLOAD_NOT_JSON'
  | 'PAYLOAD_TOO_DEEP'
  | 'EXPRESSION_ERROR'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOPIC_REFUSED'
  | 'PUBLISH_FAILED'

/** The broker could not start: the port is taken, the address is not local, or permission is denied. */
export class BrokerStartError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'BrokerStartError'
  }
}

/** A user mistake on the command line or in a config file: printed as one line, never a stack trace. */
export class UsageError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'UsageError'
  }
}

/** A sink could not start (an unreadable TLS file): the run stops with the sink's name and the reason. */
export class SinkStartError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SinkStartError'
  }
}
