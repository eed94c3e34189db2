/**
 * What a rules file may say about a sink, per type: its options' schema, the option an output
 * renders per message, its shorthand, and the checks of option values no schema can make. Pure
 * data and checks: the rules layer reads specs, only the engine builds sinks (adapters/registry.ts).
 */

/** Messages a sink holds before it drops, unless a sink's `queue_size` says otherwise. */
export const DEFAULT_QUEUE_SIZE = 10_000

/** What a sink is built from: one entry of a rules file's `sinks:` (or an implicit default). */
export interface SinkDefinition {
  name: string
  type: string
  /** The options as written (snake_case), `type` removed; already valid against the type's schema. */
  options: Record<string, unknown>
  /** Relative paths in options resolve against this directory (the rules file's). */
  baseDir: string
  /** Where it was declared, `file:line:col`; for an implicit sink, the first output that used it. */
  declaredAt: string
  /** True for the default sink behind a shorthand output (`nats: subject`, `file: path`). */
  implicit: boolean
}

/** The option a sink output renders per message, and how. */
export interface SinkAddress {
  /** The option name, on the sink (a default) and on an output (an override): `subject`, `topic`, `path`. */
  field: string
  /** Template syntax: which characters a rendered value may hold. */
  syntax: 'topic' | 'subject' | 'path' | 'table' | 'url'
  /** Without a template: derive it from the source message's MQTT topic, or refuse. */
  fallback: 'topic' | 'subject-from-topic' | 'none'
}

/** A bad option value found by `validate` (beyond what the schema checks). */
export interface SinkOptionProblem {
  /** Path below the sink's options, e.g. ['tls', 'ca']. */
  path: Array<string | number>
  message: string
}

/** One kind of sink as the rules layer knows it (adapters/specs/ has one per type). */
export interface SinkSpec {
  type: string
  /** One line for the schema and the README. */
  description: string
  /** JSON Schema properties of the sink's options (besides `type` and `queue_size`, which every sink has). */
  options: Record<string, unknown>
  required?: string[]
  address: SinkAddress
  /** JSON Schema properties an output naming this sink may add (always includes the address field). */
  outputOptions: Record<string, unknown>
  /**
   * Output options that are JsonLogic expressions (a row's `time`): checked with the rule, evaluated
   * per message on the rule's data, and handed to the sink as the delivery's `values`.
   */
  expressions?: string[]
  /**
   * Options (of the sink, or of an output, which wins) that are templates rendered per message,
   * handed to the sink in the delivery's `values`: a string, or (`map`) an object whose values are
   * templates (HTTP headers). `{…}` reads the message as it arrived, as topic templates do.
   */
  templates?: Array<{ option: string, syntax: 'header' | 'text', map?: boolean }>
  /** `{ <type>: address }` is a shorthand output; without a declared sink of the type, this default is used. */
  shorthand?: { defaults: Record<string, unknown> }
  /** Checks option values beyond the schema (URLs, combinations). No I/O. */
  validate: (options: Record<string, unknown>) => SinkOptionProblem[]
}
