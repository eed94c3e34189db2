// Reading a rules file after an edit from its last read (rules/source/yaml-edit.ts): whatever it takes, it
// must read exactly as a full read of the new text does (data, key order, where rules and top-level
// keys start); what it cannot promise that for, it declines.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { dump } from 'js-yaml'
import { stringify } from 'yaml'
import { readYamlFast } from '../../rules/source/fast-yaml.js'
import { readYamlEdit } from '../../rules/source/yaml-edit.js'
import { assertSameData } from '../helpers/same-data.js'

/** Reads `after` from `before`'s read; checks it against a full read. Returns whether the edit was read alone. */
function agrees (before: string, after: string): boolean {
  const previous = readYamlFast(before)
  if (previous === undefined) return false
  const edited = readYamlEdit({ ...previous, text: before }, after)
  if (edited === undefined) return false
  const full = readYamlFast(after)
  assert.ok(full !== undefined, `the edit was taken, but a full read declines: ${JSON.stringify(after)}`)
  assertSameData(edited.data, full.data)
  assert.deepEqual(edited.ruleOffsets, full.ruleOffsets, JSON.stringify(after))
  assert.deepEqual(edited.topKeys, full.topKeys, JSON.stringify(after))
  return true
}

const RULES = [
  'version: 1',
  'sinks:',
  '  bus: { type: nats }',
  'rules:',
  '  # the first rule',
  '  - name: a',
  '    from: x/+r',
  '    where: { ">": [{ var: payload.v }, 1] }',
  '    to: [{ mqtt: "out/{r}" }]',
  '  -',
  '    name: b',
  '    from: y',
  '    set:',
  '      note: |',
  '        two',
  '        lines',
  '    to:',
  '      - sink: bus',
  '        subject: y',
  '  - name: c',
  '    from: w',
  '    to: [{ mqtt: v }]',
  'defaults: { qos: 1 }',
  ''
].join('\n')

describe('reading an edited rules file from its last read', () => {
  it('reads one changed rule and its neighbours alone; the others keep their data objects', () => {
    const previous = readYamlFast(RULES)!
    const after = RULES.replace('"out/{r}"', '"elsewhere/{r}"')
    assert.ok(agrees(RULES, after))
    const edited = readYamlEdit({ ...previous, text: RULES }, after)!
    const [a, b, c] = (edited.data as { rules: unknown[] }).rules
    const old = (previous.data as { rules: unknown[] }).rules
    assert.notEqual(a, old[0])
    assert.notEqual(b, old[1], 'the next rule is read again too')
    assert.equal(c, old[2], 'a rule beyond is the same object')
    assert.equal((edited.data as { sinks: unknown }).sinks, (previous.data as { sinks: unknown }).sinks)
  })

  it('takes rules added, removed and moved, and edits that shift the lines below', () => {
    const lines = RULES.split('\n')
    const edits = [
      RULES.replace('  - name: c\n', '  - name: c2\n    description: new\n'),
      RULES.replace('  - name: c\n    from: w\n    to: [{ mqtt: v }]\n', ''),
      RULES.replace('  - name: c\n', '  - name: new\n    from: z\n    to: [{ mqtt: q }]\n  - name: c\n'),
      RULES.replace('        two\n', '        two\n        and three\n'),
      [...lines.slice(0, 5), ...lines.slice(9, 19), ...lines.slice(5, 9), ...lines.slice(19)].join('\n')
    ]
    for (const after of edits) assert.ok(agrees(RULES, after), after)
  })

  it('declines edits outside the rules, edits that leave the sequence, and broken YAML', () => {
    for (const after of [
      RULES.replace('version: 1', 'version: 2'),
      RULES.replace('defaults: { qos: 1 }', 'defaults: { qos: 0 }'),
      RULES.replace('  - name: c\n', 'name: c\n'),
      RULES.replace('  - name: c\n', '    - name: c\n'),
      RULES.replace('  - name: c\n', '  - name: c\nrules2: 1\n'),
      RULES.replace('"out/{r}"', '"out/{r}'),
      RULES.replace('  - name: c\n', '  - name: c\n    from: dup\n'),
      RULES.replace('v }]\ndefaults', 'v }]defaults')
    ]) {
      assert.equal(agrees(RULES, after), false, after)
    }
  })

  it('reads random edits of generated files as a full read does, or declines them', () => {
    const key = fc.constantFrom('name', 'from', 'to', 'set', 'a b', '1', 'x')
    const scalar = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constantFrom('', 'a: b', '#c', '- d', 'line\nbreak'))
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, scalar, tie('list'), tie('map')),
      list: fc.array(tie('node'), { maxLength: 3 }),
      map: fc.dictionary(key, tie('node'), { maxKeys: 3 })
    })).node
    const doc = fc.tuple(fc.array(fc.dictionary(key, value, { minKeys: 1, maxKeys: 3 }), { minLength: 1, maxLength: 5 }), fc.boolean())
      .map(([rules, tail]) => tail ? { version: 1, rules, sinks: { s: 1 } } : { version: 1, rules })
    const snippet = fc.constantFrom('', 'x', ' ', '\n', '- ', '  - name: n\n', '    k: v\n', '#', ': ', '"', '[', ']', '\n  - ', '\n    ', '|\n', 'rules:', '\t', '-')
    let taken = 0
    fc.assert(fc.property(doc, fc.boolean(), fc.nat(), fc.nat({ max: 12 }), snippet, (data, jsYaml, at, cut, insert) => {
      const before = jsYaml ? dump(data) : stringify(data)
      const start = at % (before.length + 1)
      const after = before.slice(0, start) + insert + before.slice(Math.min(before.length, start + cut))
      if (agrees(before, after)) taken++
    }), { numRuns: 3000, seed: 20261125 })
    assert.ok(taken > 300, `only ${taken} edits were read alone`)
  })
})
