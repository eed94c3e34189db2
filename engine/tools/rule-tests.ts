/**
 * Finds and reads rule test cases: `*.test.yaml` files (with the rules they test) and `tests:` in
 * rules files. Every problem in them is reported with file:line:col, like rules files.
 */
import { existsSync, readdirSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import type { ValidateFunction } from 'ajv'
import { loadSource, positionOf, problemAt, type DataPath, type SourceFile } from '../../rules/source/load.js'
import type { RuleProblem } from '../../rules/check/problems.js'
import { directoryOrFile } from '../../rules/compile/ruleset.js'
import { buildTestFileSchema } from '../../rules/check/test-schema.js'
import { createValidator, validateSource } from '../../rules/check/validate.js'

/** An output a case expects. */
export interface Expectation {
  kind: 'mqtt' | 'sink' | 'dead_letter'
  /** The topic (mqtt), sink name (sink) or failing rule (dead_letter). */
  target: string
  /** With a sink: the rendered subject, topic or (absolute) path. */
  address?: string
  /** With a dead letter: the failure code. */
  code?: string
  payload?: { text: string } | { json: unknown }
  qos?: 0 | 1 | 2
  retain?: boolean
}

export interface RuleTestCase {
  name: string
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  clientId: string
  time: number | undefined
  expect: Expectation[]
  /** file:line of the case. */
  at: string
}

export interface RuleTestSuite {
  /** The file the cases are in. */
  file: string
  /** The rules under test. */
  rulePaths: string[]
  cases: RuleTestCase[]
}

interface RawCase {
  name: string
  topic: string
  payload?: unknown
  qos?: 0 | 1 | 2
  retain?: boolean
  client_id?: string
  time?: string
  expect: 'nothing' | Array<Record<string, unknown>>
}

let testFileValidator: ValidateFunction | undefined

/** Expands paths into suites: test files, rules files with `tests:`, and directories of both. */
export function findSuites (paths: string[]): { suites: RuleTestSuite[], problems: RuleProblem[] } {
  const suites: RuleTestSuite[] = []
  const problems: RuleProblem[] = []
  for (const path of paths) {
    const isDirectory = directoryOrFile(path)
    if (isDirectory === undefined) {
      problems.push({ code: 'FILE_UNREADABLE', severity: 'error', message: 'no such file or directory', file: path, line: 1, col: 1 })
      continue
    }
    if (isDirectory) {
      const files = readdirSync(path).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(path, f))
      for (const file of files) {
        if (isTestFile(file)) readTestFile(file, suites, problems)
        else readInlineTests(file, suites, problems)
      }
      continue
    }
    if (isTestFile(path)) { readTestFile(path, suites, problems); continue }
    const before = suites.length
    readInlineTests(path, suites, problems)
    const sibling = [path.replace(/\.ya?ml$/, '.test.yaml'), path.replace(/\.ya?ml$/, '.test.yml')].find((f) => existsSync(f))
    if (sibling !== undefined) readTestFile(sibling, suites, problems)
    if (suites.length === before && !problems.some((p) => p.file === path)) {
      problems.push({ code: 'FILE_UNREADABLE', severity: 'error', message: `no test cases for ${path}: add 'tests:' to it, or write ${basename(path).replace(/\.ya?ml$/, '.test.yaml')} beside it`, file: path, line: 1, col: 1 })
    }
  }
  return { suites, problems }
}

export function isTestFile (path: string): boolean {
  return /\.test\.ya?ml$/.test(path)
}

function readTestFile (file: string, suites: RuleTestSuite[], problems: RuleProblem[]): void {
  const loaded = loadSource(file)
  if (!loaded.ok) { problems.push(...loaded.problems); return }
  testFileValidator ??= createValidator(buildTestFileSchema())
  const found = validateSource(loaded.source, testFileValidator)
  if (found.length > 0) { problems.push(...found); return }
  const data = loaded.source.data as { rules?: string | string[], cases: RawCase[] }
  const dir = dirname(file)
  let rulePaths: string[]
  if (data.rules !== undefined) {
    rulePaths = (Array.isArray(data.rules) ? data.rules : [data.rules]).map((p) => join(dir, p))
  } else {
    const guess = [file.replace(/\.test\.ya?ml$/, '.yaml'), file.replace(/\.test\.ya?ml$/, '.yml')].find((f) => existsSync(f))
    if (guess === undefined) {
      problems.push(problemAt(loaded.source, [], 'MISSING_FIELD', `no rules to test: ${basename(file).replace(/\.test\.ya?ml$/, '.yaml')} is not beside it; name them with 'rules:'`))
      return
    }
    rulePaths = [guess]
  }
  const cases = readCases(loaded.source, data.cases, ['cases'], problems)
  if (cases !== undefined) suites.push({ file, rulePaths, cases })
}

/** A rules file's own `tests:` (validated with the rules file when its rule set loads). */
function readInlineTests (file: string, suites: RuleTestSuite[], problems: RuleProblem[]): void {
  const loaded = loadSource(file)
  if (!loaded.ok) { problems.push(...loaded.problems); return }
  const tests = (loaded.source.data as { tests?: unknown } | null)?.tests
  if (!Array.isArray(tests)) return
  const cases = readCases(loaded.source, tests as RawCase[], ['tests'], problems)
  if (cases !== undefined) suites.push({ file, rulePaths: [file], cases })
}

function readCases (source: SourceFile, raw: RawCase[], base: DataPath, problems: RuleProblem[]): RuleTestCase[] | undefined {
  const dir = dirname(resolve(source.file))
  const before = problems.length
  const cases = raw.map((c, i) => {
    const at = positionOf(source, [...base, i])
    const expect = c.expect === 'nothing' || !Array.isArray(c.expect) ? [] : c.expect.map((e, j) => readExpectation(source, e, [...base, i, 'expect', j], dir, problems))
    return {
      name: String(c.name),
      topic: String(c.topic),
      payload: c.payload === undefined ? Buffer.alloc(0) : Buffer.from(typeof c.payload === 'string' ? c.payload : JSON.stringify(c.payload)),
      qos: c.qos ?? 0,
      retain: c.retain ?? false,
      clientId: c.client_id ?? 'test-client',
      time: c.time === undefined ? undefined : Date.parse(c.time),
      expect: expect.filter((e): e is Expectation => e !== undefined),
      at: `${at.file}:${at.line}`
    }
  })
  return problems.length > before ? undefined : cases
}

function readExpectation (source: SourceFile, raw: Record<string, unknown>, path: DataPath, dir: string, problems: RuleProblem[]): Expectation | undefined {
  const kinds = (['mqtt', 'sink', 'dead_letter'] as const).filter((k) => typeof raw[k] === 'string')
  if (kinds.length !== 1) {
    problems.push(problemAt(source, path, 'BAD_VALUE', kinds.length === 0 ? 'an expected output needs one of mqtt, sink or dead_letter' : `an expected output is one of mqtt, sink or dead_letter, not ${kinds.join(' and ')}`))
    return undefined
  }
  const kind = kinds[0]
  const addresses = (['subject', 'topic', 'path'] as const).filter((k) => typeof raw[k] === 'string')
  if (addresses.length > 0 && kind !== 'sink') problems.push(problemAt(source, [...path, addresses[0]], 'BAD_VALUE', `'${addresses[0]}' goes with 'sink'`, { atKey: true }))
  if (raw.code !== undefined && kind !== 'dead_letter') problems.push(problemAt(source, [...path, 'code'], 'BAD_VALUE', "'code' goes with 'dead_letter'", { atKey: true }))
  const expectation: Expectation = { kind, target: raw[kind] as string }
  if (addresses.length > 0) {
    const value = raw[addresses[0]] as string
    expectation.address = addresses[0] === 'path' ? resolve(dir, value) : value
  }
  if (typeof raw.code === 'string') expectation.code = raw.code
  if (raw.payload !== undefined) expectation.payload = typeof raw.payload === 'string' ? { text: raw.payload } : { json: raw.payload }
  if (raw.qos === 0 || raw.qos === 1 || raw.qos === 2) expectation.qos = raw.qos
  if (typeof raw.retain === 'boolean') expectation.retain = raw.retain
  return expectation
}
