import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { loadRuleSet } from '../../rules/compile/ruleset.js'
import { SourceCache } from '../../rules/source/source-cache.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'
import { ruleSchemaFor } from '../../rules/check/schema.js'

const rule = (name: string, extra = ''): string => `version: 1\nrules:\n  - name: ${name}\n    from: a/${name}\n    to: [{ mqtt: b/${name} }]\n${extra}`

describe('source cache', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'signalbox-cache-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('parses a file again only when its text changed', () => {
    const cache = new SourceCache()
    writeFileSync(join(dir, 'one.yaml'), rule('one'))
    writeFileSync(join(dir, 'two.yaml'), rule('two'))
    const first = cache.load(join(dir, 'one.yaml'), ruleSchemaFor(SINK_SPECS))
    assert.ok(first.ok)
    const again = cache.load(join(dir, 'one.yaml'), ruleSchemaFor(SINK_SPECS))
    assert.ok(again.ok)
    assert.equal(again.source, first.source, 'the same parsed file')
    assert.equal(cache.hits, 1)
    writeFileSync(join(dir, 'one.yaml'), rule('uno'))
    const changed = cache.load(join(dir, 'one.yaml'), ruleSchemaFor(SINK_SPECS))
    assert.ok(changed.ok)
    assert.notEqual(changed.source, first.source)
    assert.equal(cache.hits, 1)
  })

  it('gives a cached file\'s schema problems every time, and a rule set loads the same through it', () => {
    const cache = new SourceCache()
    writeFileSync(join(dir, 'bad.yaml'), rule('bad', '    wher: {}\n'))
    writeFileSync(join(dir, 'good.yaml'), rule('good'))
    const without = loadRuleSet([dir], { sinkSpecs: SINK_SPECS })
    const cold = loadRuleSet([dir], { sinkSpecs: SINK_SPECS, cache })
    const warm = loadRuleSet([dir], { sinkSpecs: SINK_SPECS, cache })
    assert.equal(cache.hits, 2)
    assert.ok(!without.ok && !cold.ok && !warm.ok)
    assert.deepEqual(warm.problems, without.problems)
    assert.deepEqual(cold.problems, without.problems)
    writeFileSync(join(dir, 'bad.yaml'), rule('bad'))
    const fixed = loadRuleSet([dir], { sinkSpecs: SINK_SPECS, cache })
    assert.ok(fixed.ok)
    assert.deepEqual(fixed.ruleSet.rules.map((r) => r.name), ['bad', 'good'])
  })

  it('forgets a file that left the rule set, and one that cannot be read', () => {
    const cache = new SourceCache()
    writeFileSync(join(dir, 'one.yaml'), rule('one'))
    assert.ok(cache.load(join(dir, 'one.yaml'), ruleSchemaFor(SINK_SPECS)).ok)
    rmSync(join(dir, 'one.yaml'))
    const gone = cache.load(join(dir, 'one.yaml'), ruleSchemaFor(SINK_SPECS))
    assert.ok(!gone.ok)
    assert.equal(gone.problems[0].code, 'FILE_UNREADABLE')
    writeFileSync(join(dir, 'one.yaml'), rule('one'))
    assert.ok(cache.load(join(dir, 'one.yaml'), ruleSchemaFor(SINK_SPECS)).ok)
    assert.equal(cache.hits, 0)
  })
})

describe('source cache: compiled files', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'signalbox-cache-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  const sinkFile = (qos: number): string => `version: 1\nsinks:\n  bus: { type: mqtt, url: "mqtt://127.0.0.1:1", qos: ${qos} }\nrules: []\n`
  const user = 'version: 1\nrules:\n  - name: send\n    from: a/#\n    to: [{ sink: bus }, { file: out.jsonl }]\n'

  it('reuses an unchanged file\'s compiled rules, and compiles it again when a sink it names changes', () => {
    const cache = new SourceCache()
    writeFileSync(join(dir, 'a-sinks.yaml'), sinkFile(0))
    writeFileSync(join(dir, 'b-rules.yaml'), user)
    const first = loadRuleSet([dir], { sinkSpecs: SINK_SPECS, cache })
    const second = loadRuleSet([dir], { sinkSpecs: SINK_SPECS, cache })
    assert.ok(first.ok && second.ok)
    assert.equal(second.ruleSet.rules[0], first.ruleSet.rules[0], 'the same compiled rule')
    assert.deepEqual(second.ruleSet.sinks.map((s) => s.name), first.ruleSet.sinks.map((s) => s.name), 'the implicit file sink comes back')
    assert.deepEqual(second.warnings, first.warnings)
    writeFileSync(join(dir, 'a-sinks.yaml'), sinkFile(1))
    const third = loadRuleSet([dir], { sinkSpecs: SINK_SPECS, cache })
    assert.ok(third.ok)
    assert.notEqual(third.ruleSet.rules[0], first.ruleSet.rules[0], 'compiled again')
    const output = third.ruleSet.rules[0].outputs[0] as { qos?: number }
    assert.equal(output.qos, 1, 'the output takes the sink\'s new default')
  })

  it('reports a sink removed from another file as unknown, even for a file that did not change', () => {
    const cache = new SourceCache()
    writeFileSync(join(dir, 'a-sinks.yaml'), sinkFile(0))
    writeFileSync(join(dir, 'b-rules.yaml'), user)
    assert.ok(loadRuleSet([dir], { sinkSpecs: SINK_SPECS, cache }).ok)
    writeFileSync(join(dir, 'a-sinks.yaml'), 'version: 1\nrules: []\n')
    const broken = loadRuleSet([dir], { sinkSpecs: SINK_SPECS, cache })
    assert.ok(!broken.ok)
    assert.deepEqual(broken.problems.map((p) => p.code), ['UNKNOWN_SINK'])
  })
})

/** A rules file of n rules, each a filter, a where, a set and outputs, some to a declared sink. */
function rulesFile (n: number): string {
  const out = ['version: 1', 'sinks:', '  bus: { type: nats, subject: "all.{room}" }', 'rules:']
  for (let i = 0; i < n; i++) {
    out.push(
      `  - name: r${i}`,
      `    from: s/+room/d${i}`,
      `    where: { ">": [{ var: payload.v }, ${i}] }`,
      '    set:',
      `      id: ${i}`,
      '      v: { var: payload.v }',
      '    to:',
      `      - mqtt: out/{room}/${i}`,
      ...(i % 2 === 0 ? ['      - sink: bus'] : [])
    )
  }
  return out.join('\n') + '\n'
}

/** What a rule set is, as a user can see it: rules, where each and its outputs were written, and every problem. */
function described (result: ReturnType<typeof loadRuleSet>): unknown {
  if (!result.ok) return { problems: result.problems }
  return {
    warnings: result.warnings,
    sinks: result.ruleSet.sinks.map((s) => [s.name, s.type, s.implicit]),
    rules: result.ruleSet.rules.map((r) => ({
      name: r.name,
      filter: r.pattern.source,
      at: [r.source.line, r.source.col],
      needs: [r.needsPayload, r.needsJsonPayload],
      outputs: r.outputs.map((o) => [o.kind, o.template, o.source.line, o.source.col])
    }))
  }
}

describe('source cache: edited files', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'signalbox-edit-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('reads an edited file again whole: new compiles, at their new lines, as a full load reads it', () => {
    const file = join(dir, 'rules.yaml')
    const text = rulesFile(40)
    writeFileSync(file, text)
    const cache = new SourceCache()
    const before = loadRuleSet([file], { sinkSpecs: SINK_SPECS, cache })
    assert.ok(before.ok)
    // Two lines more in rule 10: every rule after it moves down two lines.
    writeFileSync(file, text.replace('      id: 10\n', '      id: 10\n      extra: 1\n      more: 2\n'))
    const after = loadRuleSet([file], { sinkSpecs: SINK_SPECS, cache })
    assert.equal(cache.hits, 0, 'the changed file was not taken from the cache')
    assert.deepEqual(described(after), described(loadRuleSet([file], { sinkSpecs: SINK_SPECS })), 'as a full load reads it')
    assert.ok(after.ok)
    assert.notEqual(after.ruleSet.rules[30].where, before.ruleSet.rules[30].where, 'rule 30 was compiled again')
    assert.equal(after.ruleSet.rules[30].source.line, before.ruleSet.rules[30].source.line + 2)
  })

  it('loads random edits exactly as a full load does: rules, positions, sinks and problems', () => {
    const file = join(dir, 'rules.yaml')
    const cache = new SourceCache()
    let text = rulesFile(12)
    writeFileSync(file, text)
    loadRuleSet([file], { sinkSpecs: SINK_SPECS, cache })
    const snippets = ['', 'x', '\n', '  - name: n\n    from: q\n    to: [{ mqtt: z }]\n', '      k: 1\n', '#', ': ', '"', '{room}', '      - sink: bus\n', '    on_error: drop\n', '  - name: r3\n    from: dup\n']
    fc.assert(fc.property(fc.nat(), fc.nat({ max: 40 }), fc.constantFrom(...snippets), (at, cut, insert) => {
      const start = at % (text.length + 1)
      text = text.slice(0, start) + insert + text.slice(Math.min(text.length, start + cut))
      writeFileSync(file, text)
      assert.deepEqual(described(loadRuleSet([file], { sinkSpecs: SINK_SPECS, cache })), described(loadRuleSet([file], { sinkSpecs: SINK_SPECS })), text)
      // Start again from a clean file now and then, so the edits keep landing in a loadable file.
      if (text.length < 300 || !loadRuleSet([file], { sinkSpecs: SINK_SPECS }).ok) {
        text = rulesFile(12)
        writeFileSync(file, text)
        loadRuleSet([file], { sinkSpecs: SINK_SPECS, cache })
      }
    }), { numRuns: 400, seed: 20261125 })
  }).timeout(120000) // a heavy property test: its own bound, not the suite's 20 s
})
