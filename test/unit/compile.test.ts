// Rule compilation: every fixtures/invalid/*.yaml must produce exactly its .expected lines (file:line:col CODE).
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, relative } from 'node:path'
import { compileRuleFileInSteps } from '../../rules/compile/compile.js'
import { parseSource } from '../../rules/source/load.js'
import { parseAndValidate, type ParsedFile } from '../../rules/source/parse-file.js'
import { formatProblem, formatProblemShort } from '../../rules/check/problems.js'
import { loadRuleSet, loadRuleSetInSteps } from '../../rules/compile/ruleset.js'
import { renderRuleSchema } from '../../rules/check/schema.js'
import { SinkTable } from '../../rules/compile/sink-table.js'
import { SourceCache } from '../../rules/source/source-cache.js'
import { fixturePath, projectRoot } from '../helpers/paths.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'
import { ruleSchemaFor } from '../../rules/check/schema.js'

describe('compile', () => {
  describe('invalid fixtures', () => {
    const dir = fixturePath('invalid')
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'))
    it('has fixtures to check', () => assert.ok(files.length >= 8))
    for (const f of files) {
      it(`reports ${f} as its .expected file says`, () => {
        const file = relative(projectRoot, join(dir, f))
        const result = loadRuleSet([join(projectRoot, file)].map((p) => relative(process.cwd(), p)), { sinkSpecs: SINK_SPECS })
        const problems = result.ok ? result.warnings : result.problems
        const actual = problems.map(formatProblemShort).map((l) => l.replace(/^.*fixtures\//, 'fixtures/'))
        const expected = readFileSync(join(dir, f.replace(/\.yaml$/, '.expected')), 'utf8').trim().split('\n')
        assert.deepEqual(actual, expected)
      })
    }
  })

  it('loads in steps, asking for each parse and pausing after each file, to the same result as loadRuleSet', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signalbox-compile-'))
    // Drives the steps as the reloader does, parsing here; counts the parses asked for and the plain pauses.
    const drive = (steps: ReturnType<typeof loadRuleSetInSteps>): { result: ReturnType<typeof loadRuleSet>, parses: string[], pauses: number } => {
      const parses: string[] = []
      let pauses = 0
      let answer: ParsedFile | undefined
      for (;;) {
        const step = steps.next(answer)
        if (step.done === true) return { result: step.value, parses, pauses }
        if (step.value === undefined) { pauses++; answer = undefined; continue }
        parses.push(basename(step.value.parse.file))
        answer = parseAndValidate(step.value.parse.file, step.value.parse.text, ruleSchemaFor(SINK_SPECS))
      }
    }
    try {
      for (let f = 0; f < 4; f++) writeFileSync(join(dir, `f${f}.yaml`), `version: 1\nrules:\n  - name: r${f}\n    from: in/${f}/+x\n    to: [{ mqtt: "out/{x}" }]\n`)
      const cache = new SourceCache()
      const cold = drive(loadRuleSetInSteps([dir], { sinkSpecs: SINK_SPECS, cache }))
      // Four files parsed; a pause after each read and each compile (small files compile within one slice).
      assert.deepEqual(cold.parses, ['f0.yaml', 'f1.yaml', 'f2.yaml', 'f3.yaml'])
      assert.equal(cold.pauses, 8)
      const whole = loadRuleSet([dir], { sinkSpecs: SINK_SPECS })
      assert.ok(cold.result.ok && whole.ok)
      if (cold.result.ok && whole.ok) {
        assert.deepEqual(cold.result.ruleSet.rules.map((r) => [r.name, r.pattern.filter]), whole.ruleSet.rules.map((r) => [r.name, r.pattern.filter]))
        assert.deepEqual(cold.result.ruleSet.files, whole.ruleSet.files)
      }
      // Changed above its rules (an edit inside them is read from the last read, here).
      writeFileSync(join(dir, 'f1.yaml'), '# changed\nversion: 1\nrules:\n  - name: r1\n    from: in/+x\n    to: [{ mqtt: "out/{y}" }]\n')
      const codes = (r: ReturnType<typeof loadRuleSet>): string[] => r.ok ? [] : r.problems.map((p) => `${p.line}:${p.col} ${p.code}`)
      // With the cache, only the changed file is asked for.
      const broken = drive(loadRuleSetInSteps([dir], { sinkSpecs: SINK_SPECS, cache }))
      assert.deepEqual(broken.parses, ['f1.yaml'])
      assert.deepEqual(codes(broken.result), ['6:23 UNKNOWN_CAPTURE'])
      assert.deepEqual(codes(broken.result), codes(loadRuleSet([dir], { sinkSpecs: SINK_SPECS })))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('compiles a large file in slices, pausing whenever a slice is due, to the same rules as in one go', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signalbox-compile-'))
    try {
      const rules = Array.from({ length: 3000 }, (_, i) => `  - name: r${i}\n    from: in/${i}/+x\n    where: { ">": [{ var: payload.v }, ${i}] }\n    to: [{ mqtt: "out/{x}/${i}" }]\n`)
      writeFileSync(join(dir, 'big.yaml'), `version: 1\nrules:\n${rules.join('')}`)
      const parsed = parseAndValidate(join(dir, 'big.yaml'), readFileSync(join(dir, 'big.yaml'), 'utf8'), ruleSchemaFor(SINK_SPECS))
      assert.ok(parsed.ok)
      if (!parsed.ok) return
      // A slice that ends every 100 rules, where the reloader's ends by the clock.
      let sinceRestart = 0
      const slice = { get due () { return ++sinceRestart > 100 }, restart: () => { sinceRestart = 0 } }
      const steps = compileRuleFileInSteps(parsed.source, new SinkTable(SINK_SPECS), { slice })
      let pauses = 0
      let step = steps.next()
      for (; step.done !== true; step = steps.next()) pauses++
      assert.equal(pauses, 29, 'a pause after each 100 rules but the last')
      assert.deepEqual(step.value.rules.map((r) => r.name), rules.map((_, i) => `r${i}`))
      assert.deepEqual(step.value.problems, [])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('shares sink names across the files of a set, and reports a name declared twice', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signalbox-compile-'))
    try {
      writeFileSync(join(dir, 'a.yaml'), 'version: 1\nsinks:\n  bus: { type: nats }\nrules: []\n')
      writeFileSync(join(dir, 'b.yaml'), 'version: 1\nrules:\n  - name: r\n    from: x/+id\n    to: [{ sink: bus, subject: "x.{id}" }]\n')
      const shared = loadRuleSet([dir], { sinkSpecs: SINK_SPECS })
      assert.ok(shared.ok, shared.ok ? '' : shared.problems.map(formatProblem).join('\n'))
      if (shared.ok) assert.deepEqual(shared.ruleSet.sinks.map((s) => s.name), ['bus'])
      writeFileSync(join(dir, 'c.yaml'), 'version: 1\nsinks:\n  bus: { type: file, path: x.jsonl }\nrules: []\n')
      const twice = loadRuleSet([dir], { sinkSpecs: SINK_SPECS })
      assert.equal(twice.ok, false)
      if (!twice.ok) assert.deepEqual(twice.problems.map(formatProblemShort).map((l) => l.slice(dir.length + 1)), ['c.yaml:3:3 DUPLICATE_SINK'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('fills env:NAME references into sink options, and reports an unset variable at its option', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signalbox-compile-'))
    const name = `SIGNALBOX_TEST_PG_${process.pid}`
    try {
      const file = join(dir, 'a.yaml')
      writeFileSync(file, `version: 1\nsinks:\n  db:\n    type: postgres\n    url: "\${env:${name}}"\n    table: t_\${env:${name}_T}\nrules:\n  - name: r\n    from: x/+id\n    to: [{ sink: db }]\n`)
      process.env[name] = 'postgres://u:secret@127.0.0.1:5999/db'
      process.env[`${name}_T`] = 'x'
      const set = loadRuleSet([dir], { sinkSpecs: SINK_SPECS })
      assert.ok(set.ok, set.ok ? '' : set.problems.map(formatProblem).join('\n'))
      if (set.ok) assert.deepEqual(set.ruleSet.sinks[0].options, { url: 'postgres://u:secret@127.0.0.1:5999/db', table: 't_x' })
      delete process.env[name]
      const unset = loadRuleSet([dir], { sinkSpecs: SINK_SPECS })
      assert.equal(unset.ok, false)
      if (!unset.ok) assert.deepEqual(unset.problems.map(formatProblemShort).map((l) => l.slice(dir.length + 1)), ['a.yaml:5:10 UNSET_ENV'])
    } finally {
      delete process.env[name]
      delete process.env[`${name}_T`]
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('checks the templates of a sink option (HTTP headers and body) against each rule that uses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signalbox-compile-'))
    try {
      writeFileSync(join(dir, 'a.yaml'), 'version: 1\nsinks:\n  hook:\n    type: http\n    url: "http://127.0.0.1:1/{room}"\n    headers: { x-site: "{site}" }\nrules:\n  - name: r\n    from: s/+room\n    to:\n      - sink: hook\n        body: "t,room={room} v={nope}"\n')
      const result = loadRuleSet([dir], { sinkSpecs: SINK_SPECS })
      assert.equal(result.ok, false)
      if (!result.ok) assert.deepEqual(result.problems.map(formatProblemShort).map((l) => l.slice(dir.length + 1)), ['a.yaml:11:9 UNKNOWN_CAPTURE', 'a.yaml:12:32 UNKNOWN_CAPTURE'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('adds one implicit sink per shorthand type when none is declared', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signalbox-compile-'))
    try {
      writeFileSync(join(dir, 'a.yaml'), 'version: 1\nrules:\n  - name: r\n    from: x/+id\n    to:\n      - nats: "x.{id}"\n      - file: "{id}.jsonl"\n      - file: all.jsonl\n')
      const result = loadRuleSet([dir], { sinkSpecs: SINK_SPECS })
      assert.ok(result.ok, result.ok ? '' : result.problems.map(formatProblem).join('\n'))
      if (!result.ok) return
      assert.deepEqual(result.ruleSet.sinks.map((s) => [s.name, s.type, s.implicit, s.options]), [['nats', 'nats', true, { servers: 'nats://127.0.0.1:4222' }], ['file', 'file', true, {}]])
      assert.deepEqual(result.ruleSet.rules[0].outputs.map((o) => o.kind === 'sink' ? o.sink : o.kind), ['nats', 'file', 'file'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  for (const set of ['rules', 'sinks']) {
    it(`loads the example rule set in fixtures/${set} without a problem`, () => {
      const result = loadRuleSet([fixturePath(set)], { sinkSpecs: SINK_SPECS })
      assert.ok(result.ok, result.ok ? '' : result.problems.map(formatProblem).join('\n'))
      assert.deepEqual(result.warnings, [])
    })
  }

  it('reports every problem of a file at once, sorted by position', () => {
    const result = loadRuleSet([fixturePath('invalid', 'wrong-type.yaml')], { sinkSpecs: SINK_SPECS })
    assert.equal(result.ok, false)
    if (result.ok) return
    assert.equal(result.problems.length, 7)
    const lines = result.problems.map((p) => p.line)
    assert.deepEqual(lines, [...lines].sort((a, b) => a - b))
  })

  it('refuses a YAML alias bomb without expanding it', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for (let i = 0; i < 9; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill('*' + String.fromCharCode(97 + i)).join(',')}]`)
    const parsed = parseSource('bomb.yaml', bomb.join('\n') + '\n')
    assert.equal(parsed.ok, false)
    if (!parsed.ok) assert.equal(parsed.problems[0].code, 'YAML_SYNTAX')
  })

  it('points a caret at the column of the problem', () => {
    const result = loadRuleSet([fixturePath('invalid', 'unknown-capture.yaml')], { sinkSpecs: SINK_SPECS })
    assert.equal(result.ok, false)
    if (result.ok) return
    const text = formatProblem(result.problems[0]).split('\n')
    assert.equal(text[1], '6 |       - mqtt: alerts/{rooom}/hot')
    assert.equal(text[2], '  |                      ^')
    assert.equal(text[1].indexOf('{'), text[2].indexOf('^'))
  })

  it('keeps rules/schema.json in step with rules/check/schema.ts (npm run schema)', () => {
    assert.equal(readFileSync(join(projectRoot, 'rules', 'schema.json'), 'utf8'), renderRuleSchema(SINK_SPECS))
  })
})
