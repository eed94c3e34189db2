// The fast YAML path against the `yaml` library: whatever it takes, it must read exactly as `yaml`
// does (data, and where each rule starts); whatever it cannot promise that for, it must decline.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { dump } from 'js-yaml'
import { isNode, parseDocument, stringify } from 'yaml'
import { readYamlFast } from '../../rules/source/fast-yaml.js'
import { offsetOf, parseSource, parseWithYaml, positionOf, scalarOffset, type DataPath, type SourceFile } from '../../rules/source/load.js'
import { documentedYaml, fixturePath } from '../helpers/paths.js'
import { assertSameData } from '../helpers/same-data.js'

/** What `yaml` reads, as load.ts reads it when the fast path declines. */
function slow (text: string): { data: unknown, ruleStarts: number[] } | undefined {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) return undefined
  const rules = doc.getIn(['rules'], true)
  const ruleStarts: number[] = []
  if (isNode(rules) && 'items' in rules && Array.isArray(rules.items)) {
    for (const item of rules.items) ruleStarts.push((item as { range: [number] }).range[0])
  }
  return { data: doc.toJS({ maxAliasCount: 100 }), ruleStarts }
}

function agrees (text: string): 'taken' | 'declined' {
  const fast = readYamlFast(text)
  if (fast === undefined) return 'declined'
  const reference = slow(text)
  assert.ok(reference !== undefined, `the fast path took text yaml refuses: ${JSON.stringify(text)}`)
  assertSameData(fast.data, reference.data)
  assert.deepEqual(fast.ruleOffsets, (fast.data as { rules?: unknown })?.rules !== undefined && Array.isArray((fast.data as { rules: unknown[] }).rules) ? reference.ruleStarts : [])
  return 'taken'
}

/** Every path into the data, and beside each container a child it does not have. */
function pathsOf (data: unknown, path: DataPath = []): DataPath[] {
  const out: DataPath[] = [path]
  if (Array.isArray(data)) {
    data.forEach((item, i) => out.push(...pathsOf(item, [...path, i])))
    out.push([...path, data.length])
  } else if (data !== null && typeof data === 'object') {
    for (const [key, value] of Object.entries(data)) out.push(...pathsOf(value, [...path, key]))
    out.push([...path, 'no-such-key'])
  }
  return out
}

/**
 * Every position a problem can ask for (a node, its key, a point inside a string) is the same from
 * the fast path's parts as from the whole `yaml` document. A fresh source per path: after a few
 * parts the fast path parses the whole document, which would make the rest agree trivially.
 */
function positionsAgree (text: string): number {
  const whole = parseWithYaml('x.yaml', text)
  assert.ok(whole.ok)
  const fresh = (): SourceFile => {
    const parsed = parseSource('x.yaml', text)
    assert.ok(parsed.ok)
    return parsed.source
  }
  let fromParts = 0
  for (const path of pathsOf(whole.source.data)) {
    for (const atKey of [false, true]) {
      const source = fresh()
      if (source.locate(path).base > 0) fromParts++
      assert.equal(offsetOf(source, path, atKey), offsetOf(whole.source, path, atKey), `${JSON.stringify(path)} atKey ${atKey} in ${JSON.stringify(text)}`)
    }
    assert.equal(scalarOffset(fresh(), path, 1), scalarOffset(whole.source, path, 1), `inside ${JSON.stringify(path)} in ${JSON.stringify(text)}`)
  }
  return fromParts
}

const KEY = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('rules', 'name', '__proto__', 'constructor', '1', 'true', 'a b', '#', '- x', 'é'))
const SCALAR = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
  fc.constantFrom('yes', 'no', '0x10', '1e3', '.5', '~', 'null', '', ' lead', 'trail ', 'a: b', '#c', '- d', '"q"', "'s'", 'line\nbreak', 'tab\there', '\u2028'))
/** How yaml.stringify and js-yaml's dump write a document. */
const STYLE = fc.constantFrom('yaml-block', 'yaml-flow', 'js-yaml', 'js-yaml-flow')

/** Any YAML value, with collections of up to `width` entries. */
function valueOf (width: number): fc.Arbitrary<unknown> {
  return fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, SCALAR, tie('list'), tie('map')),
    list: fc.array(tie('node'), { maxLength: width }),
    map: fc.dictionary(KEY, tie('node'), { maxKeys: width })
  })).node
}

function written (data: unknown, style: string): string {
  if (style === 'yaml-block') return stringify(data)
  if (style === 'yaml-flow') return stringify(data, { collectionStyle: 'flow' })
  return dump(data, style === 'js-yaml-flow' ? { flowLevel: 2 } : {})
}

function yamlFiles (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return yamlFiles(path)
    return /\.ya?ml$/.test(name) ? [path] : []
  })
}

describe('fast YAML path', () => {
  it('reads every fixture as yaml does, or declines it', () => {
    let taken = 0
    for (const file of yamlFiles(fixturePath())) if (agrees(readFileSync(file, 'utf8')) === 'taken') taken++
    assert.ok(taken >= 10, `only ${taken} fixtures taken`)
  })

  it('reads every YAML example of the README and docs/ as yaml does', () => {
    const blocks = documentedYaml()
    assert.ok(blocks.length > 5)
    for (const block of blocks) agrees(block)
  })

  it('reads scalars as yaml\'s core schema does', () => {
    const scalars = ['yes', 'on', '0x1F', '0o17', '017', '1_000', '+12', '.5', '1e3', '1E3', '-.INF', '.NaN', '~', 'Null', 'NULL', 'True', 'TRUE',
      'false', '12:30', '2024-01-01', '0b101', '-0', '+.5', '1.', '0.1e+2', '08', '0x', '1e', '.inf', '+.inf', '-0.0', '0o', '1__0', '00', '0.',
      '-.5e-3', '+0x1F', '-0x1F', '0X1F', '1.5E+3', '.e3', '-', '"\\x41\\N\\_\\L\\P"', "'it''s'", '"\\t\\u263A\\U0001F600"', '"a\\/b"',
      'a # c', 'a#b', '[a, b, ]', '{a: 1, b: }', '{a, b}', '[a: 1]', '"\\x"', '{"a":1}', '[1, [2, [3]]]', '<<', '"12345678901234567890"', '12345678901234567890']
    for (const s of scalars) agrees(`x: ${s}\n`)
    for (const block of ['|\n  a\n  b\n', '>\n  a\n  b\n\n  c\n', '|-\n  a\n', '>+\n  a\n\n', '|2\n   a\n', "'a\n  b'", '"a\\\n  b"']) agrees(`x: ${block}`)
  })

  it('declines what it might read differently: directives, tags, aliases, null and collection keys, lone CRs, several documents, empty rules', () => {
    for (const text of ['%YAML 1.1\n---\na: yes\n', 'a: !!str 1\n', 'a: !custom x\n', 'a: &x 1\nb: *x\n', 'null: a\n', '~: a\n', ': a\n',
      '[a, b]: c\n', '{a: 1}: c\n', '? [a]\n: b\n', 'a: 1\r b: 2\r', 'a: 1\n---\nb: 2\n', '', '# only a comment\n', 'a: 1\na: 2\n', 'a: [\n',
      'rules:\n  -\n  - name: a\n']) {
      assert.equal(readYamlFast(text), undefined, JSON.stringify(text))
    }
    // Valid YAML nested 301 levels, past js-yaml's limit of 100.
    assert.equal(readYamlFast(`a: ${'['.repeat(300)}${']'.repeat(300)}\n`), undefined)
  })

  it('reads what yaml.stringify and js-yaml dump write, in block and flow style, as yaml does', () => {
    const doc = fc.record({ version: fc.constant(1), rules: fc.array(fc.dictionary(KEY, valueOf(4), { maxKeys: 4 }), { maxLength: 4 }) })
    fc.assert(fc.property(doc, STYLE, (data, style) => {
      const text = written(data, style)
      if (agrees(text) === 'taken') {
        // And a rule's position, when asked for, is where yaml puts it.
        const parsed = parseSource('x.yaml', text)
        assert.ok(parsed.ok)
        const reference = slow(text)!
        reference.ruleStarts.forEach((start, i) => {
          const at = positionOf(parsed.source, ['rules', i])
          const expected = parsed.source.lineCounter.linePos(start)
          assert.deepEqual([at.line, at.col], [expected.line, expected.col])
        })
      }
    }), { numRuns: 500, seed: 20261125 })
  })

  it('places rules given with comments, blank lines and odd indentation where yaml does', () => {
    const text = [
      'version: 1 # the format',
      '',
      'rules:',
      '  # a comment before the first rule',
      '  - name: a',
      '    from: x/+r',
      '    to: [{ mqtt: "out/{r}" }]',
      '  -',
      '    # the rule starts on the next line',
      '    name: b',
      '    from: y',
      '    to:',
      '      - mqtt: z',
      '  -   name: c',
      '      from: w',
      '      to: [{ mqtt: v }]',
      '  - { name: d, from: u, to: [{ mqtt: t }] }',
      ''
    ].join('\n')
    assert.equal(agrees(text), 'taken')
    assert.equal(agrees(text.replace(/\n/g, '\r\n')), 'taken')
    assert.equal(agrees(`\uFEFF${text}`), 'taken')
    assert.ok(positionsAgree(text) > 20, 'positions in rules come from the rule read alone')
    positionsAgree(text.replace(/\n/g, '\r\n'))
    positionsAgree(`\uFEFF${text}`)
    positionsAgree(`${text}sinks:\n  bus: { type: nats }\n# the end\n`)
    positionsAgree('"version": 1\n? rules\n: - name: a\n    from: b\n  - name: c\n')
    positionsAgree(`--- # a document\n${text}...\n`)
  })

  it('finds every position in the fixtures and the documentation\'s examples where yaml does', () => {
    const texts = [...yamlFiles(fixturePath()).map((f) => readFileSync(f, 'utf8')), ...documentedYaml()]
    let fromParts = 0
    for (const text of texts) if (readYamlFast(text) !== undefined && parseWithYaml('x.yaml', text).ok) fromParts += positionsAgree(text)
    assert.ok(fromParts > 100, `only ${fromParts} positions came from parts`)
  })

  it('finds every position in generated rules files where yaml does, in block and flow style', () => {
    const value = valueOf(3)
    const extra = fc.dictionary(fc.constantFrom('sinks', 'x', 'a b', '2'), value, { maxKeys: 2 })
    const doc = fc.tuple(extra, fc.array(fc.dictionary(KEY, value, { maxKeys: 3 }), { maxLength: 3 }), extra)
      .map(([before, rules, after]) => ({ version: 1, ...before, rules, ...after }))
    let fromParts = 0
    fc.assert(fc.property(doc, STYLE, (data, style) => {
      const text = written(data, style)
      if (readYamlFast(text) !== undefined) fromParts += positionsAgree(text)
    }), { numRuns: 200, seed: 20261125 })
    assert.ok(fromParts > 1000, `only ${fromParts} positions came from parts`)
  }).timeout(60000) // a heavy property test: its own bound, not the suite's 20 s
})
