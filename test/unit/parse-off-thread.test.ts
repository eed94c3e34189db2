// The reloader's parse thread: what comes back from it must be what a parse on the main thread gives.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { compileRuleFile } from '../../rules/compile/compile.js'
import { positionOf, type SourceFile } from '../../rules/source/load.js'
import { OffThreadParser } from '../../rules/source/parse-off-thread.js'
import { parseAndValidate, type ParsedFile } from '../../rules/source/parse-file.js'
import { SinkTable } from '../../rules/compile/sink-table.js'
import { fixturePath } from '../helpers/paths.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'
import { ruleSchemaFor } from '../../rules/check/schema.js'

/** What a parse says, in a form both threads' results can be compared by: data, problems, and compile problems with positions. */
function described (parsed: ParsedFile): unknown {
  if (!parsed.ok) return { problems: parsed.problems }
  const compiled = compileRuleFile(parsed.source, new SinkTable(SINK_SPECS))
  return {
    data: parsed.source.data,
    problems: parsed.problems,
    compile: compiled.problems,
    rules: compiled.rules.map((r) => [r.name, r.source.line, r.source.col]),
    positions: rulePositions(parsed.source)
  }
}

function rulePositions (source: SourceFile): unknown[] {
  const rules = (source.data as { rules?: unknown[] } | null)?.rules
  if (!Array.isArray(rules)) return []
  return rules.slice(0, 50).map((_, i) => [positionOf(source, ['rules', i, 'from']), positionOf(source, ['rules', i, 'name'], { atKey: true })])
}

describe('parsing on the reloader\'s thread', function () {
  this.timeout(60_000)
  const parser = new OffThreadParser()
  let turns = 0
  const turn = async (): Promise<void> => { turns++; await new Promise((resolve) => setImmediate(resolve)) }
  after(async () => { await parser.close() })

  /** Parses on the thread (from the text, or read there without one) and here, and compares. */
  const check = async (file: string, text: string | undefined): Promise<ParsedFile> => {
    const there = await parser.parse(file, text, ruleSchemaFor(SINK_SPECS), turn)
    assert.deepEqual(described(there), described(parseAndValidate(file, text, ruleSchemaFor(SINK_SPECS))), file)
    if (there.ok) assert.equal(there.source.text, text ?? readFileSync(file, 'utf8'))
    return there
  }

  it('gives what a parse here gives, for every fixture: valid, invalid, and ones only the yaml library reads', async () => {
    const dirs = ['rules', 'invalid', 'sinks', 'paho'].map((d) => fixturePath(d))
    let files = 0
    for (const dir of dirs) {
      for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml'))) {
        await check(join(dir, f), readFileSync(join(dir, f), 'utf8'))
        await check(join(dir, f), undefined)
        files++
      }
    }
    assert.ok(files >= 15, `${files} files`)
  })

  it('gives what a parse here gives for YAML the fast path declines (aliases, tags), syntax errors and a bare value', async () => {
    const aliased = 'version: 1\nrules:\n  - name: a\n    from: &f in/+x\n    to: [{ mqtt: "out/{x}" }]\n  - name: b\n    from: *f\n    where: { "==": [1, 2] }\n    to: [{ mqtt: "other/{y}" }]\n'
    const parsed = await check('aliased.yaml', aliased)
    assert.ok(parsed.ok)
    await check('broken.yaml', 'version: 1\nrules:\n  - name: [a\n')
    await check('scalar.yaml', 'just text\n')
    const missing = await check(fixturePath('rules', 'no-such-file.yaml'), undefined)
    assert.ok(!missing.ok && missing.problems[0].code === 'FILE_UNREADABLE')
    await check('lone-cr.yaml', 'version: 1\rrules:\r  - name: a\r    form: x\r')
  })

  it('sends a large file in pieces, letting the event loop turn between them', async () => {
    const rules = Array.from({ length: 4000 }, (_, i) => `  - name: rule-${i}\n    from: sensors/${i}/+room/temperature\n    where: { ">": [{ var: payload.celsius }, ${i % 40}] }\n    set: { room: { var: params.room }, n: ${i} }\n    to: [{ mqtt: "alerts/{room}/${i}", qos: 1 }]\n`)
    const before = turns
    const parsed = await check('big.yaml', `version: 1\nrules:\n${rules.join('')}`)
    assert.ok(parsed.ok)
    // About 1 MB of rules in pieces of 64 KB.
    assert.ok(turns - before >= 10, `${turns - before} turns`)
  })

  it('starts a new thread after close, and after its thread has ended', async () => {
    await parser.close()
    await check('one.yaml', 'version: 1\nrules:\n  - name: a\n    from: in\n    to: [{ mqtt: out }]\n')
  })
})
