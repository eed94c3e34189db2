// The documentation (README.md and docs/) tells the truth: its rule examples load, and every problem and failure code is documented.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../engine/service/config.js'
import { compileRuleFile } from '../../rules/compile/compile.js'
import { SinkTable } from '../../rules/compile/sink-table.js'
import { SINK_TYPES } from '../../adapters/registry.js'
import { parseSource } from '../../rules/source/load.js'
import { formatProblem } from '../../rules/check/problems.js'
import { validateRuleFile } from '../../rules/check/validate.js'
import { documents, projectRoot } from '../helpers/paths.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'
import { ruleSchemaFor } from '../../rules/check/schema.js'
import { defaultText, LIMIT_SETTINGS, renderSettingsReference, SETTINGS } from '../../engine/service/settings.js'

const docs = documents()
/** All of it, for what may be documented in any file (sink options, error codes). */
const allDocs = docs.map((d) => d.text).join('\n')

/** Codes from a union type in a source file, so a new code cannot go undocumented. */
function codesOf (file: string, typeName: string): string[] {
  const text = readFileSync(join(projectRoot, file), 'utf8')
  const start = text.indexOf(`export type ${typeName} =`)
  assert.ok(start >= 0, `${typeName} not found in ${file}`)
  const body = text.slice(start, text.indexOf('\n\n', start))
  return [...body.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1])
}

describe('docs', () => {
  it('has examples of complete rules files, in the README and docs/, and each one loads cleanly', () => {
    const files = docs.flatMap((doc) => [...doc.text.matchAll(/```yaml\n([\s\S]*?)```/g)].filter((b) => /^version: 1$/m.test(b[1])).map((b) => ({ doc, block: b })))
    assert.ok(files.length >= 2, `${files.length} examples`)
    for (const { doc, block } of files) {
      // Line numbers are shifted to the document's, so a problem points into it.
      const offset = doc.text.slice(0, block.index).split('\n').length
      const parsed = parseSource(doc.file, '\n'.repeat(offset) + block[1])
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.problems.map(formatProblem).join('\n'))
      if (!parsed.ok) continue
      const problems = validateRuleFile(parsed.source, ruleSchemaFor(SINK_SPECS))
      const sinks = new SinkTable(SINK_SPECS)
      sinks.addFile(parsed.source, problems)
      problems.push(...compileRuleFile(parsed.source, sinks).problems)
      assert.deepEqual(problems.map(formatProblem), [])
    }
  })

  it('has config file examples that load', () => {
    const blocks = [...allDocs.matchAll(/```yaml\n(# [^\n]*signalbox run --config[^\n]*\n[\s\S]*?)```/g)]
    assert.ok(blocks.length >= 2, `found ${blocks.length} config examples`)
    const dir = mkdtempSync(join(tmpdir(), 'signalbox-docs-'))
    try {
      for (const [i, block] of blocks.entries()) {
        const file = join(dir, `config-${i}.yaml`)
        writeFileSync(file, block[1])
        const loaded = loadConfig(file)
        assert.ok(loaded.ok, loaded.ok ? '' : `${block[1].split('\n')[0]}\n${loaded.problems.map(formatProblem).join('\n')}`)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  for (const t of SINK_TYPES) {
    it(`documents every option of the ${t.type} sink in docs/sinks.md`, () => {
      const sinks = docs.find((doc) => doc.file === join('docs', 'sinks.md'))!.text
      const section = sinks.slice(sinks.indexOf(`### \`${t.type}\``))
      const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| option |')))
      for (const key of [...Object.keys(t.options), 'queue_size']) {
        assert.match(table, new RegExp(`^\\| [^|]*\`${key}\``, 'm'), `${t.type} option ${key} is not in its README table`)
      }
    })
  }

  for (const [file, type] of [['rules/check/problems.ts', 'ProblemCode'], ['engine/runtime/errors.ts', 'FailureCode'], ['engine/runtime/errors.ts', 'StartupCode']]) {
    it(`documents every ${type} in the error tables of docs/error-codes.md`, () => {
      const codes = codesOf(file, type)
      assert.ok(codes.length > 3)
      const table = docs.find((doc) => doc.file === join('docs', 'error-codes.md'))!.text
      for (const code of codes) assert.ok(table.includes(`| \`${code}\` |`), `${code} is not in docs/error-codes.md`)
    })
  }

  const BEGIN = '<!-- settings: generated from engine/service/settings.ts by `npm run docs:settings` -->\n'
  const END = '<!-- end of settings -->'

  it('has the settings reference of docs/operations.md as the settings table makes it', () => {
    const file = join(projectRoot, 'docs', 'operations.md')
    const text = readFileSync(file, 'utf8')
    const at = text.indexOf(BEGIN)
    const end = text.indexOf(END, at)
    assert.ok(at >= 0 && end > at, `docs/operations.md has no ${BEGIN.trim()} … ${END} section`)
    const fresh = renderSettingsReference([SETTINGS, LIMIT_SETTINGS])
    if (process.env.UPDATE_DOCS === '1') writeFileSync(file, text.slice(0, at + BEGIN.length) + fresh + text.slice(end))
    else assert.equal(text.slice(at + BEGIN.length, end), fresh, 'the settings table changed: run npm run docs:settings')
  })

  it('lists every flag of `signalbox run` that sets a setting in the README, with the default the table gives', () => {
    const readme = docs.find((doc) => doc.file === 'README.md')!.text
    for (const s of Object.values(SETTINGS)) {
      if (!('flag' in s) || s.flag === undefined) continue
      const flag = s.flag.split(', ').pop()!.split(' ')[0]
      const row = readme.split('\n').find((line) => new RegExp(`^\\| \`(-., )?${flag}[ \`]`).test(line))
      assert.ok(row !== undefined, `${flag} is not in the README's table of run options`)
      // A default that is a value must be the table's; one in words (`off`, computed ones) is the README's to phrase.
      if (s.defaultText === undefined) assert.ok(row.includes(`| \`${defaultText(s)}\` |`), `the README gives another default for ${flag}: ${row}`)
    }
  })
})
