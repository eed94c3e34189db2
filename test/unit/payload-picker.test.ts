// The payload picker decodes only the fields rules read; JSON.parse (through decodePayload) is the
// reference: on any bytes, the picker must take exactly the payloads it takes, and give each picked
// field exactly its value (including -0, repeated keys, escapes and bytes that are not UTF-8).
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { decodePayload } from '../../engine/runtime/decode.js'
import { PayloadPicker } from '../../engine/runtime/payload-picker.js'
import { engineFor } from '../helpers/engine.js'

/** Keys the documents use, so picks hit: look-alikes, non-ASCII, prototype names, the empty key. */
const KEYS = ['value', 'seq', 't', 'room', 'a', '', 'é', 'x y', 'valu\u0435', '__proto__', 'constructor', 'toString', 'ümlaut-long-key']
const PICKABLE = KEYS.filter((k) => k !== '__proto__')

/** Same text as JSON.stringify would give in meaning, in a random one of JSON's spellings. */
function spell (text: string, rnd: () => number): string {
  let out = ''
  for (const ch of text) {
    const r = rnd()
    if (r < 0.1) out += escapeUnits(ch, rnd)
    else if (ch === '/' && r < 0.5) out += '\\/'
    else out += JSON.stringify(ch).slice(1, -1)
  }
  return `"${out}"`
}

/** `ch` as \\uXXXX escapes of its UTF-16 units, hex digits in either case. */
function escapeUnits (ch: string, rnd: () => number): string {
  let out = ''
  for (let i = 0; i < ch.length; i++) {
    const hex = ch.charCodeAt(i).toString(16).padStart(4, '0')
    out += '\\u' + hex.replace(/[a-f]/g, (h) => rnd() < 0.5 ? h.toUpperCase() : h)
  }
  return out
}

const space = (rnd: () => number): string => ['', '', '', ' ', '\n', '\t', '\r\n  '][Math.floor(rnd() * 7)]

type Doc = { kind: 'raw', text: string } | { kind: 'string', value: string } | { kind: 'array', items: Doc[] } | { kind: 'object', entries: Array<[string, Doc]> }

function write (doc: Doc, rnd: () => number): string {
  const s = (): string => space(rnd)
  switch (doc.kind) {
    case 'raw': return doc.text
    case 'string': return spell(doc.value, rnd)
    case 'array': return `[${s()}${doc.items.map((d) => write(d, rnd)).join(`${s()},${s()}`)}${s()}]`
    case 'object': return `{${s()}${doc.entries.map(([k, d]) => `${spell(k, rnd)}${s()}:${s()}${write(d, rnd)}`).join(`${s()},${s()}`)}${s()}}`
  }
}

const numberText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.integer().map(String),
  fc.stringMatching(/^-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?$/),
  fc.constantFrom('-0', '0.0', '-0.0', '1e400', '9007199254740993', '9007199254740992.5', '1796149766541.7371', '0.1', '123456789012345.67')
)
const doc: fc.Arbitrary<Doc> = fc.letrec<{ doc: Doc }>((tie) => ({
  doc: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    numberText.map((text) => ({ kind: 'raw' as const, text })),
    fc.constantFrom('true', 'false', 'null').map((text) => ({ kind: 'raw' as const, text })),
    fc.string({ unit: 'binary', maxLength: 8 }).map((value) => ({ kind: 'string' as const, value })),
    fc.array(tie('doc'), { maxLength: 4 }).map((items) => ({ kind: 'array' as const, items })),
    fc.array(fc.tuple(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 3 })), tie('doc')), { maxLength: 5 }).map((entries) => ({ kind: 'object' as const, entries }))
  )
})).doc
/** Mostly objects with the keys rules read, some of them repeated. */
const topLevel = fc.oneof(
  { arbitrary: fc.array(fc.tuple(fc.constantFrom(...KEYS), doc), { maxLength: 8 }).map((entries): Doc => ({ kind: 'object', entries })), weight: 4 },
  { arbitrary: doc, weight: 1 }
)
const payloadText = fc.tuple(topLevel, fc.integer(), fc.boolean()).map(([d, seed, padded]) => {
  let state = seed | 0
  const rnd = (): number => { state = (Math.imul(state, 1103515245) + 12345) | 0; return ((state >>> 8) & 0xffff) / 0x10000 }
  const text = write(d, rnd)
  return padded ? ` ${text}\n` : text
})
/** Bytes that break JSON in interesting places, and bytes outside ASCII and UTF-8. */
const BREAKERS = [...'"\\{}[],:. \n-+eE0123456789tfnu/'].map((c) => c.charCodeAt(0)).concat([0x00, 0x1f, 0x7f, 0x80, 0xc3, 0xe2, 0xef, 0xbb, 0xbf, 0xff])
const mutation = fc.tuple(fc.nat(), fc.constantFrom('delete', 'insert', 'replace', 'truncate'), fc.constantFrom(...BREAKERS))
function mutate (bytes: Buffer, edits: Array<[number, string, number]>): Buffer {
  let b = bytes
  for (const [at, how, byte] of edits) {
    const i = b.length === 0 ? 0 : at % (b.length + (how === 'insert' ? 1 : 0))
    if (how === 'delete') b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)])
    else if (how === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)])
    else if (how === 'truncate' || b.length === 0) b = b.subarray(0, i)
    else {
      b = Buffer.from(b)
      b[i] = byte
    }
  }
  return b
}

/** The picker's decode against the full one: the same verdict, and the same value for every picked field. */
function assertAgrees (fields: string[], maxDepth: number, payload: Buffer): void {
  const full = decodePayload(payload, maxDepth)
  const picked = new PayloadPicker(fields, maxDepth).decode(payload)
  const context = `payload ${JSON.stringify(payload.toString('latin1'))}, fields ${JSON.stringify(fields)}, depth ${maxDepth}`
  assert.equal(picked.json, full.json, context)
  assert.equal(picked.tooDeep, full.tooDeep, context)
  const value = full.value
  if (!full.json || value === null || typeof value !== 'object' || Array.isArray(value)) {
    assert.deepStrictEqual(picked.value, value, context)
    return
  }
  const got = picked.value as Record<string, unknown>
  for (const field of fields) {
    assert.equal(Object.hasOwn(got, field), Object.hasOwn(value, field), `${context}: has '${field}'`)
    assert.deepStrictEqual(got[field], (value as Record<string, unknown>)[field], `${context}: '${field}'`)
  }
  for (const key of Object.keys(got)) assert.ok(fields.includes(key), `${context}: '${key}' was not asked for`)
}

const fields = fc.subarray(PICKABLE, { minLength: 1 })
const depth = fc.constantFrom(64, 64, 3, 2, 1)

describe('payload picker', () => {
  it('agrees with JSON.parse on generated JSON in random spellings (whitespace, escapes, number forms, repeated keys)', () => {
    fc.assert(fc.property(payloadText, fields, depth, (text, f, d) => assertAgrees(f, d, Buffer.from(text))), { numRuns: 4000, seed: 61 })
  })

  it('agrees with JSON.parse on the same JSON broken by random edits', () => {
    let taken = 0
    fc.assert(fc.property(payloadText, fc.array(mutation, { minLength: 1, maxLength: 3 }), fields, depth, (text, edits, f, d) => {
      const payload = mutate(Buffer.from(text), edits)
      if (decodePayload(payload, d).json) taken++
      assertAgrees(f, d, payload)
    }), { numRuns: 6000, seed: 62 })
    // Most edits break the JSON, but not all: both sides of the verdict must be exercised.
    assert.ok(taken > 300 && taken < 5700, `${taken} of 6000 edited payloads were JSON`)
  })

  it('agrees with JSON.parse on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fields, (bytes, f) => assertAgrees(f, 64, Buffer.from(bytes))), { numRuns: 3000, seed: 63 })
  })

  it('reads the cases a scan gets wrong most easily', () => {
    const cases = [
      '{"value": 1, "value": -0}', '{"value":-0.0}', '{"t":1796149766541.7371}', '{"t":9007199254740993}', '{"t":1e400}',
      '{"t":0.1e1}', '{"t":123456789012345678901234567890}', '{"t":1.0000000000000000000000001}',
      '{"t":0.0000000000000000000001}', '{"t":0.00000000000000000000001}', '{"t":-0.000000000000000000000012}', '{"t":4.35e-5}',
      '{"\\u0076alue": 5}', '{"valu\\u0065":"\\ud83d\\ude00"}', '{"é":"\u00e9", "room":"k\u00fcche"}', '{"room":"a\\/b\\n"}',
      '{"a":{"b":[1,{"c":null}]},"value":true}', '{"a":[[[[1]]]]}', '{"value":01}', '{"value":1.}', '{"value":-}', '{"value":.5}',
      '{"value":tru}', '{"value":"\\x"}', '{"value":"\u0001"}', '{"value":1,}', '{,"value":1}', '{"value" 1}', '{"value":1}x',
      '{"value":1}}', '[{"value":1}]', '"value"', '42', '', ' ', '{}', '{ }', '\ufeff{"value":1}', '{"value":1e}', '{"value":"\\u12"}',
      '{"__proto__":{"value":1},"value":2}', '{"constructor":1,"toString":"x"}'
    ]
    for (const text of cases) {
      for (const d of [64, 2, 1]) assertAgrees(['value', 'a', 't', 'room', 'é', 'constructor', 'toString'], d, Buffer.from(text))
    }
    // Not UTF-8: the full decode reads each bad byte as U+FFFD, in keys and values alike.
    for (const bytes of [[0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d], [0x7b, 0x22, 0x72, 0x6f, 0x6f, 0x6d, 0x22, 0x3a, 0x22, 0xe2, 0x82, 0x22, 0x7d]]) {
      assertAgrees(['\ufffd', 'room'], 64, Buffer.from(bytes))
    }
  })

  it('builds only the fields asked for', () => {
    const picked = new PayloadPicker(['value'], 64).decode(Buffer.from('{"seq":1,"value":{"x":[1,2]},"pad":"xxxx"}'))
    assert.deepStrictEqual(picked, { json: true, value: { value: { x: [1, 2] } } })
  })

  it('refuses to pick __proto__, which JSON.parse makes an own field', () => {
    assert.throws(() => new PayloadPicker(['__proto__'], 64), /__proto__/)
  })
})

describe('engine with picked payload fields', () => {
  it('gives rules that read fields the fields, and a rule that reads the payload whole the whole payload, for one message', () => {
    const { engine, published } = engineFor([
      'version: 1',
      'rules:',
      '  - name: fields',
      '    from: s/+room',
      '    where: { ">": [{ var: payload.celsius }, 20] }',
      '    set: { c: { var: payload.celsius }, unit: { var: payload.meta.unit }, missing: { missing: [payload.nope] } }',
      '    to: [{ mqtt: "hot/{payload.room}" }]',
      '  - name: whole',
      '    from: s/+room',
      '    set: { all: { var: payload } }',
      '    to: [{ mqtt: "copy/{room}" }]'
    ].join('\n') + '\n')
    const payload = Buffer.from('{"celsius": 21.5, "room": "kitchen", "meta": {"unit": "C"}, "pad": "xxxxxxxx"}')
    engine.handle({ topic: 's/k', payload, qos: 0, retain: false, clientId: 'c', hops: 0 })
    const byTopic = Object.fromEntries(published.map((m) => [m.topic, JSON.parse(m.payload.toString())]))
    assert.deepStrictEqual(byTopic, {
      'hot/kitchen': { c: 21.5, unit: 'C', missing: ['payload.nope'] },
      'copy/k': { all: { celsius: 21.5, room: 'kitchen', meta: { unit: 'C' }, pad: 'xxxxxxxx' } }
    })
  })

  it('fails a message whose payload is not JSON, or nests too deeply, as the full decode does', () => {
    const { engine, published } = engineFor('version: 1\nrules:\n  - name: r\n    from: s/#\n    where: { var: payload.ok }\n    to: [{ mqtt: out }]\n')
    const deep = `{"ok": true, "deep": ${'['.repeat(70)}${']'.repeat(70)}}`
    for (const text of ['{"ok": true', 'on', deep, '{"ok": true}']) {
      engine.handle({ topic: 's/x', payload: Buffer.from(text), qos: 0, retain: false, clientId: 'c', hops: 0 })
    }
    const codes = published.filter((m) => m.topic.startsWith('$dl/')).map((m) => (JSON.parse(m.payload.toString()) as { code: string }).code)
    assert.deepStrictEqual(codes, ['PAYLOAD_NOT_JSON', 'PAYLOAD_NOT_JSON', 'PAYLOAD_TOO_DEEP'])
    assert.deepStrictEqual(published.filter((m) => m.topic === 'out').length, 1)
  })
})
