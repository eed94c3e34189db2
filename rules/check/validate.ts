/** Schema validation of a parsed rules file: every ajv error becomes a RuleProblem at the node at fault. */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { problemAt, type DataPath, type SourceFile } from '../source/load.js'
import { editDistance } from '../logic/logic.js'
import type { RuleProblem } from './problems.js'

/** A rules file schema's validator, and its part for one rule (validateEdited), compiled together on first use. */
const compiled = new WeakMap<object, { file: ValidateFunction, rule: ValidateFunction }>()

function ruleValidators (schema: Record<string, unknown>): { file: ValidateFunction, rule: ValidateFunction } {
  const validators = compiled.get(schema)
  if (validators !== undefined) return validators
  const ajv = newAjv()
  const file = ajv.compile(schema)
  // Taken from the same compile: a few ms, where compiling it alone would take tens.
  const rule = ajv.getSchema(`${String(schema.$id)}#/definitions/rule`)
  if (rule === undefined) throw new Error('the rules schema has no rule definition')
  compiled.set(schema, { file, rule })
  return { file, rule }
}

/** Compiles a JSON Schema for validateSource (allErrors: every problem at once). */
export function createValidator (schema: Record<string, unknown>): ValidateFunction {
  return newAjv().compile(schema)
}

function newAjv (): Ajv {
  return new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true, formats: { 'date-time': isDateTime } })
}

/** RFC 3339 date-time, as test cases write `time:` (no ajv-formats needed for one format). */
function isDateTime (text: string): boolean {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(text) && !Number.isNaN(Date.parse(text))
}

/** Validates the data of a rules file against the rules schema (buildRuleSchema: it names the sink types). */
export function validateRuleFile (source: SourceFile, schema: Record<string, unknown>): RuleProblem[] {
  return validateSource(source, ruleValidators(schema).file)
}

/**
 * Validates a file read from its last read (yaml-edit.ts) when that read had no problem. The rules
 * it kept are the same data objects, valid then and so now (the schema checks each rule alone), so
 * only the rest of the file and the rules that are new are checked: a 10,000-rule file's edit
 * costs its edited rule, not 15 ms of checking every rule again.
 */
export function validateEdited (source: SourceFile, kept: ReadonlySet<unknown>, schema: Record<string, unknown>): RuleProblem[] {
  const data = source.data as { rules?: unknown }
  if (data === null || typeof data !== 'object' || !Array.isArray(data.rules)) return validateRuleFile(source, schema)
  const { file, rule: validateRule } = ruleValidators(schema)
  const problems = file({ ...data, rules: [] }) ? [] : problemsOf(source, file.errors, '')
  data.rules.forEach((rule: unknown, i: number) => {
    if (kept.has(rule) || validateRule(rule)) return
    problems.push(...problemsOf(source, validateRule.errors, `/rules/${i}`))
  })
  return problems
}

/** Validates a parsed file against a compiled schema; each ajv error becomes a problem at its node. */
export function validateSource (source: SourceFile, validate: ValidateFunction): RuleProblem[] {
  return validate(source.data) ? [] : problemsOf(source, validate.errors, '')
}

/** ajv's errors as problems; `at` is the JSON pointer of the part of the file that was checked. */
function problemsOf (source: SourceFile, errors: ErrorObject[] | null | undefined, at: string): RuleProblem[] {
  const problems: RuleProblem[] = []
  for (const error of errors ?? []) {
    // A failed anyOf branch is reported once, through its anyOf error.
    if (error.schemaPath.includes('/anyOf/')) continue
    const problem = toProblem(source, at === '' ? error : { ...error, instancePath: at + error.instancePath })
    if (problem !== undefined) problems.push(problem)
  }
  return problems
}

/** 'rules[0].to[1].qos', for messages. */
export function describePath (path: DataPath): string {
  let out = ''
  for (const segment of path) out += typeof segment === 'number' ? `[${segment}]` : (out === '' ? segment : `.${segment}`)
  return out === '' ? 'the file' : out
}

function toProblem (source: SourceFile, error: ErrorObject): RuleProblem | undefined {
  const path = parsePointer(error.instancePath)
  const field = describePath(path)
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty)
      const known = Object.keys((error.parentSchema as { properties?: object } | undefined)?.properties ?? {})
      return problemAt(source, [...path, key], 'UNKNOWN_FIELD', `unknown field '${key}'${didYouMean(key, known)}${path.length > 0 ? ` in ${field}` : ''}; known fields: ${known.join(', ')}`, { atKey: true })
    }
    case 'required':
      return problemAt(source, path, 'MISSING_FIELD', `missing field '${String(params.missingProperty)}' in ${field}`)
    case 'type':
      return problemAt(source, path, 'WRONG_TYPE', `${field} must be ${typeName(String(params.type))}, found ${describeValue(valueAt(source.data, path))}`)
    case 'enum':
      return problemAt(source, path, 'BAD_VALUE', `${field} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, found ${JSON.stringify(valueAt(source.data, path))}`)
    case 'const':
      return problemAt(source, path, 'BAD_VALUE', `${field} must be ${JSON.stringify(params.allowedValue)}, found ${JSON.stringify(valueAt(source.data, path))}`)
    case 'pattern':
      return problemAt(source, path, 'BAD_VALUE', `${field} ${JSON.stringify(valueAt(source.data, path))} may hold only letters, digits, '_', '.' and '-', and must start with a letter or digit`)
    case 'minItems':
      return problemAt(source, path, 'BAD_VALUE', `${field} must have at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}`)
    case 'minLength':
      return problemAt(source, path, 'BAD_VALUE', `${field} must not be empty`)
    case 'maxLength':
      return problemAt(source, path, 'BAD_VALUE', `${field} must be at most ${String(params.limit)} characters`)
    case 'propertyNames':
      return problemAt(source, [...path, String(params.propertyName)], 'BAD_VALUE', `'${String(params.propertyName)}' cannot be a payload field name`, { atKey: true })
    case 'not':
      // Reported through its 'propertyNames' parent.
      return undefined
    case 'if':
      // Reported through the errors of its 'then' branch.
      return undefined
    case 'format':
      return problemAt(source, path, 'BAD_VALUE', `${field} must be ${params.format === 'date-time' ? 'a date and time like 2026-11-25T08:00:00Z' : String(params.format)}, found ${JSON.stringify(valueAt(source.data, path))}`)
    case 'anyOf': {
      const branches = (error.schema as Array<{ type?: string }>).map((b) => typeName(String(b.type)))
      return problemAt(source, path, 'WRONG_TYPE', `${field} must be ${branches.join(' or ')}, found ${describeValue(valueAt(source.data, path))}`)
    }
    case 'minimum':
    case 'maximum':
      return problemAt(source, path, 'BAD_VALUE', `${field} must be ${error.keyword === 'minimum' ? 'at least' : 'at most'} ${String(params.limit)}, found ${JSON.stringify(valueAt(source.data, path))}`)
    default:
      return problemAt(source, path, 'SCHEMA', `${field} ${error.message ?? 'is invalid'}`)
  }
}

/** JSON Pointer → path; '~1' is decoded before '~0' (RFC 6901). */
function parsePointer (pointer: string): Array<string | number> {
  if (pointer === '') return []
  return pointer.slice(1).split('/').map((raw) => {
    const s = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    return /^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s
  })
}

function valueAt (data: unknown, path: DataPath): unknown {
  let value = data
  for (const segment of path) value = (value as Record<string | number, unknown> | undefined)?.[segment]
  return value
}

function typeName (type: string): string {
  if (type.includes(',')) return type.split(',').map(typeName).join(' or ')
  switch (type) {
    case 'object': return 'a mapping'
    case 'array': return 'a list'
    case 'string': return 'a string'
    case 'boolean': return 'true or false'
    case 'integer': return 'a whole number'
    case 'number': return 'a number'
    default: return type
  }
}

function describeValue (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return `${typeof value} ${JSON.stringify(value)}`
}

function didYouMean (key: string, known: string[]): string {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1
  for (const k of known) {
    const d = editDistance(key, k)
    if (d < bestDistance) { best = k; bestDistance = d }
  }
  return best === undefined ? '' : ` (did you mean '${best}'?)`
}
