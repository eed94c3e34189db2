/** Counters per rule and for the engine as a whole: plain numbers on the hot path, read by prometheus.ts when scraped. */

/** What happened to the messages one rule saw. */
export interface RuleCounters {
  /** Messages whose topic matched the rule's filter. */
  matched: number
  /** Matched messages for which `where` was truthy (or absent). */
  passed: number
  /** Matched messages that `where` rejected. */
  filtered: number
  /** Messages the rule could not handle: payload not JSON, expression error, refused topic. */
  errors: number
  /** Outputs published on the embedded broker or handed to a sink (whose own counters follow delivery). */
  published: number
  /** Outputs not published: refused topic/subject/path, hop limit, or the broker refused the publish. */
  dropped: number
}

/** Totals across rules. */
export interface EngineCounters {
  /** Messages the engine received from the broker. */
  received: number
  /** Received messages that no rule matched. */
  unmatched: number
  /** Messages published to the dead-letter topic. */
  deadLettered: number
  /** Outputs dropped because the message had passed max_hops rules already. */
  hopLimit: number
  /**
   * Outputs (published or handed to a sink) of messages the write-ahead log handed back after a
   * restart: also in their rules' `published`, so emitted = delivered + dropped still adds up.
   */
  replayedOutputs: number
}

export function createRuleCounters (): RuleCounters {
  return { matched: 0, passed: 0, filtered: 0, errors: 0, published: 0, dropped: 0 }
}

export function createEngineCounters (): EngineCounters {
  return { received: 0, unmatched: 0, deadLettered: 0, hopLimit: 0, replayedOutputs: 0 }
}
