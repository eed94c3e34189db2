/** Every problem a rules or config file can have, with its position, reported all at once. */

/** Problem codes. A code is never reused after it is retired. */
export type ProblemCode =
  | 'YAML_SYNTAX'
  | 'FILE_UNREADABLE'
  | 'FILE_TOO_LARGE'
  | 'SCHEMA'
  | 'UNKNOWN_FIELD'
  | 'MISSING_FIELD'
  | 'WRONG_TYPE'
  | 'BAD_VALUE'
  | 'BAD_FILTER'
  | 'BAD_TEMPLATE'
  | 'UNKNOWN_CAPTURE'
  | 'UNKNOWN_OPERATOR'
  | 'BAD_EXPRESSION'
  | 'DUPLICATE_RULE'
  | 'SELF_MATCH'
  | 'BAD_OUTPUT'
  | 'UNKNOWN_SINK'
  | 'DUPLICATE_SINK'
  | 'UNUSED_SINK'
  | 'SET_IS_EXPRESSION'
  | 'UNSET_ENV'

export type Severity = 'error' | 'warning'

/** One problem in one file, pointing at the node at fault. */
export interface RuleProblem {
  code: ProblemCode
  severity: Severity
  message: string
  file: string
  /** 1-based line and column. */
  line: number
  col: number
  /** The source line, for the caret excerpt (absent when the file could not be read). */
  excerpt?: string
}

/** Result of a pipeline stage: a value, or every problem found. */
export type Result<T> = { ok: true, value: T, warnings: RuleProblem[] } | { ok: false, problems: RuleProblem[] }

/** Sorts problems by file, then position, so output reads top to bottom. */
export function sortProblems (problems: RuleProblem[]): RuleProblem[] {
  return [...problems].sort((a, b) =>
    a.file === b.file ? (a.line - b.line || a.col - b.col) : (a.file < b.file ? -1 : 1))
}

/** `file:line:col: error CODE: message`, then the source line and a caret under the column. */
export function formatProblem (p: RuleProblem): string {
  const head = `${p.file}:${p.line}:${p.col}: ${p.severity} ${p.code}: ${p.message}`
  if (p.excerpt === undefined) return head
  const gutter = `${p.line} | `
  const caret = ' '.repeat(gutter.length - 2) + '| ' + caretLine(p.excerpt, p.col)
  return `${head}\n${gutter}${p.excerpt}\n${caret}`
}

/** The short form used by the invalid-fixture tests: `file:line:col CODE`. */
export function formatProblemShort (p: RuleProblem): string {
  return `${p.file}:${p.line}:${p.col} ${p.code}`
}

export function hasErrors (problems: RuleProblem[]): boolean {
  return problems.some((p) => p.severity === 'error')
}

// Tabs are kept so the caret lines up with what a terminal shows for the excerpt.
function caretLine (line: string, col: number): string {
  let pad = ''
  for (let i = 0; i < col - 1 && i < line.length; i++) pad += line[i] === '\t' ? '\t' : ' '
  return pad + '^'
}
