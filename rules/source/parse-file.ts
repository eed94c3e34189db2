/** One rules file → its parsed source and its schema problems: the work a reload can hand to another thread. */
import { parseSource, readSourceText, type SourceFile } from './load.js'
import type { RuleProblem } from '../check/problems.js'
import { validateRuleFile } from '../check/validate.js'

export type ParsedFile = { ok: true, source: SourceFile, problems: RuleProblem[] } | { ok: false, problems: RuleProblem[] }

/** Parses a file's text (read here when not given) and validates it against a rules schema (schema.ts). */
export function parseAndValidate (file: string, text: string | undefined, schema: Record<string, unknown>): ParsedFile {
  if (text === undefined) {
    const read = readSourceText(file)
    if (!read.ok) return read
    text = read.text
  }
  const parsed = parseSource(file, text)
  return parsed.ok ? { ok: true, source: parsed.source, problems: validateRuleFile(parsed.source, schema) } : parsed
}
