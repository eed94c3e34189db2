/**
 * The JSON Schema of a rules file. `npm run schema` writes it to rules/schema.json for editors
 * (`# yaml-language-server: $schema=…`); `signalbox schema` prints it; a test fails if the file is stale.
 * Descriptions are user documentation: editor hovers and `signalbox schema` show them.
 */

import { DEFAULT_QUEUE_SIZE, type SinkSpec } from '../model/sink-spec.js'
import { testCaseSchema } from './test-schema.js'

/** JsonLogic: any JSON value; operators are checked when the rules compile, not by the schema. */
const logic = {
  description: 'A JsonLogic expression (https://jsonlogic.com). It sees `topic`, `params` (named captures), `payload` and `meta` (`clientId`, `qos`, `retain`, `receivedAt`, `hops`).'
}

/**
 * An output: `mqtt` (the embedded broker), `sink` (a named sink), or a sink type's shorthand
 * (`nats: subject`, `file: path`). Which options fit which kind is checked when rules compile,
 * so the schema stays one flat object that editors complete well.
 */
function buildOutput (specs: readonly SinkSpec[]): Record<string, unknown> {
  const properties: Record<string, unknown> = { ...embeddedOutput, sink: sinkReference }
  for (const t of specs) {
    if (t.shorthand !== undefined) {
      properties[t.type] = { type: 'string', minLength: 1, description: `Shorthand: send to the ${t.type} sink (the one declared, or a default) with this ${t.address.field}. ${describeField(t.outputOptions[t.address.field])}` }
    }
  }
  for (const t of specs) {
    for (const [key, schema] of Object.entries(t.outputOptions)) {
      if (!(key in properties)) properties[key] = schema
    }
  }
  return {
    type: 'object',
    description: 'An output: `mqtt` republishes on the embedded broker; `sink` names a sink from `sinks`; ' +
      specs.filter((t) => t.shorthand !== undefined).map((t) => `\`${t.type}\``).join(' and ') + ' are shorthands.',
    additionalProperties: false,
    properties
  }
}

function describeField (schema: unknown): string {
  return (schema as { description?: string } | undefined)?.description ?? ''
}

const sinkReference = {
  type: 'string',
  minLength: 1,
  description: 'Name of a sink declared under `sinks` (in any rules file of the set).',
  examples: ['bus']
}

const queueSize = {
  type: 'integer',
  minimum: 1,
  maximum: 10_000_000,
  default: DEFAULT_QUEUE_SIZE,
  description: 'Messages held while the destination is down or slow; beyond this, new messages are dropped and counted.'
}

/** `sinks: { name: { type, …options } }`: each type's options are checked by its own schema. */
function buildSinkDefinitions (specs: readonly SinkSpec[]): Record<string, unknown> {
  const definitions: Record<string, unknown> = {
    sink: {
      type: 'object',
      description: 'A named sink: `type` and its options.',
      required: ['type'],
      properties: { type: { enum: specs.map((t) => t.type), description: specs.map((t) => `\`${t.type}\`: ${t.description}`).join(' ') } },
      allOf: specs.map((t) => ({
        if: { properties: { type: { const: t.type } }, required: ['type'] },
        then: { $ref: `#/definitions/sink_${t.type}` }
      }))
    }
  }
  for (const t of specs) {
    definitions[`sink_${t.type}`] = {
      type: 'object',
      description: t.description,
      additionalProperties: false,
      required: ['type', ...(t.required ?? [])],
      properties: { type: { const: t.type }, ...t.options, queue_size: queueSize }
    }
  }
  return definitions
}

/** Republish on the embedded broker. */
const embeddedOutput = {
  mqtt: {
    type: 'string',
    minLength: 1,
    description: 'Topic template for the republished message. `{name}` is a capture from `from`, `{payload.a.b}` a payload field, `{meta.clientId}` a message fact. A value that is empty or holds `/`, `+`, `#` or NUL refuses the output (a `#name` capture may hold `/`).',
    examples: ['alerts/{room}/hot']
  },
  qos: {
    enum: [0, 1, 2],
    description: 'QoS of the republished message. Default: the QoS the message arrived with.',
    examples: [1]
  },
  retain: {
    type: 'boolean',
    default: false,
    description: 'Publish with the retain flag, so new subscribers get the last value.'
  }
}

const rule = {
  type: 'object',
  description: 'A rule: messages on `from` that pass `where` are reshaped by `set` and sent to every output in `to`.',
  additionalProperties: false,
  required: ['name', 'from', 'to'],
  properties: {
    name: {
      type: 'string',
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
      patternMessage: "may hold only letters, digits, '_', '.' and '-', and must start with a letter or digit",
      maxLength: 128,
      description: 'Unique name of the rule; used in counters, logs and dead-letter topics. Letters, digits, `_`, `.` and `-`.',
      examples: ['hot-room']
    },
    description: { type: 'string', description: 'Free text for people reading the rules.' },
    from: {
      type: 'string',
      description: 'MQTT topic filter with optional named captures: `+name` captures one level, `#name` the rest (it must be last). Plain `+` and `#` capture nothing.',
      examples: ['sensors/+room/temperature', 'factory/+line/#path']
    },
    where: { ...logic, description: 'Filter: the rule goes on only when this JsonLogic expression is truthy. ' + logic.description },
    set: {
      type: 'object',
      description: 'The new payload, field by field: each value is a JsonLogic expression (or a literal). Without `set`, the payload passes unchanged.',
      propertyNames: { not: { enum: ['__proto__', 'constructor', 'prototype'] } },
      additionalProperties: logic,
      examples: [{ room: { var: 'params.room' }, celsius: { var: 'payload.celsius' } }]
    },
    to: {
      type: 'array',
      minItems: 1,
      description: 'One or more outputs.',
      items: { $ref: '#/definitions/output' }
    },
    on_error: {
      enum: ['dead_letter', 'drop'],
      default: 'dead_letter',
      description: 'What happens to a message the rule cannot handle (payload not JSON, an expression error, a refused topic): `dead_letter` publishes it with the reason to the dead-letter topic; `drop` only counts it.'
    }
  }
}

/** The schema of a rules file, version 1, for these sink types. */
export function buildRuleSchema (specs: readonly SinkSpec[]): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://github.com/signalbox/signalbox/rules/schema.json',
    title: 'Signalbox rules file',
    description: 'Rules that route, filter and reshape MQTT messages.',
    type: 'object',
    additionalProperties: false,
    required: ['version', 'rules'],
    properties: {
      version: { const: 1, description: 'Rule format version. Always 1.' },
      sinks: {
        type: 'object',
        description: 'Named sinks that outputs send to with `sink: <name>`. Names are shared by every file of a rule set.',
        additionalProperties: { $ref: '#/definitions/sink' }
      },
      rules: { type: 'array', description: 'The rules. Every rule whose `from` matches a message runs.', items: { $ref: '#/definitions/rule' } },
      tests: { type: 'array', description: 'Test cases for the rules of this file, run by `signalbox test` (ignored by `run`).', items: testCaseSchema }
    },
    definitions: { rule, output: buildOutput(specs), ...buildSinkDefinitions(specs) }
  }
}

/** The text of rules/schema.json, as `npm run schema` writes it. */
export function renderRuleSchema (specs: readonly SinkSpec[]): string {
  const schema = { $comment: 'generated by `npm run schema`, do not edit', ...buildRuleSchema(specs) }
  return JSON.stringify(schema, null, 2) + '\n'
}

const schemas = new WeakMap<readonly SinkSpec[], Record<string, unknown>>()

/** buildRuleSchema, built once per list of sink types (validators are kept by the schema object). */
export function ruleSchemaFor (specs: readonly SinkSpec[]): Record<string, unknown> {
  let schema = schemas.get(specs)
  if (schema === undefined) { schema = buildRuleSchema(specs); schemas.set(specs, schema) }
  return schema
}
