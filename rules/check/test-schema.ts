/**
 * Rule test cases: a message in, the outputs expected. They live in `*.test.yaml` files or under
 * `tests:` in a rules file; `signalbox test` runs them with no broker or network.
 */

const qos = { enum: [0, 1, 2] }

/** One expected output: on the embedded broker, to a sink, or a dead letter. */
const expectation = {
  type: 'object',
  description: 'An expected output: exactly one of `mqtt` (a topic on the embedded broker), `sink` (a sink name) or `dead_letter` (the rule that failed).',
  additionalProperties: false,
  properties: {
    mqtt: { type: 'string', minLength: 1, description: 'The topic of a republish on the embedded broker.' },
    sink: { type: 'string', minLength: 1, description: 'The sink an output went to (`nats` or `file` for the shorthand defaults).' },
    dead_letter: { type: 'string', minLength: 1, description: 'The rule whose failure was dead-lettered.' },
    subject: { type: 'string', description: 'With `sink`: the rendered NATS subject.' },
    topic: { type: 'string', description: 'With `sink`: the rendered topic on the remote broker.' },
    path: { type: 'string', description: 'With `sink`: the rendered file path, relative to the test file.' },
    code: { type: 'string', description: 'With `dead_letter`: the failure code, e.g. PAYLOAD_NOT_JSON.' },
    payload: { description: 'The payload: a string is compared with the text as is; anything else with the payload parsed as JSON. Omit it to not check the payload.' },
    qos,
    retain: { type: 'boolean' }
  }
}

/** One case. */
export const testCaseSchema = {
  type: 'object',
  description: 'A test case: one message in, the outputs expected.',
  additionalProperties: false,
  required: ['name', 'topic', 'expect'],
  properties: {
    name: { type: 'string', minLength: 1, description: 'What the case shows.' },
    topic: { type: 'string', minLength: 1, description: 'The topic the message arrives on.' },
    payload: { description: 'The payload: a string is sent as is; any other value as JSON. Default: empty.' },
    qos: { ...qos, default: 0 },
    retain: { type: 'boolean', default: false },
    client_id: { type: 'string', description: 'The publishing client (meta.clientId). Default: test-client.' },
    time: { type: 'string', format: 'date-time', description: 'When the message arrives (meta.receivedAt, {date} in paths), e.g. 2026-11-25T08:00:00Z. Default: now.' },
    expect: {
      type: ['array', 'string'],
      description: 'The outputs, in any order; `nothing` (or `[]`) when no output is expected. An output not listed fails the case.',
      items: expectation,
      if: { type: 'string' },
      then: { const: 'nothing' }
    }
  }
}

/** A `*.test.yaml` file. */
export function buildTestFileSchema (): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Signalbox rule tests',
    type: 'object',
    additionalProperties: false,
    required: ['cases'],
    properties: {
      version: { const: 1 },
      rules: {
        type: ['string', 'array'],
        items: { type: 'string', minLength: 1 },
        description: 'Rules files or directories under test, relative to this file. Default: the file of the same name without `.test` (home.test.yaml → home.yaml).'
      },
      cases: { type: 'array', minItems: 1, items: testCaseSchema }
    }
  }
}
