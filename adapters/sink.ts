/** What the engine hands to an output. The sink contract (start/send/flush/close) grows from here. */

/** A derived message, ready to publish. */
export interface OutMessage {
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  /** Rules this message has passed through, including the one that made it. */
  hops: number
}

/** Publishes one message; `done` gets an error when it could not be published. */
export type Publish = (out: OutMessage, done: (error?: Error) => void) => void
