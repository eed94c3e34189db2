/** Schema validation of a parsed rules file: every ajv error becomes a RuleProblem at the node at fault. */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { problemAt, type DataPath, type SourceFile } from '../source/load.js'
import { editDistance } from '../logic/logic.js'
import type { RuleProblem } from './problems.js'

/** A rules file schema's validator, compiled on first use (schema.ts builds one schema object per list of sink types). */
const compiled = new WeakMap<object, ValidateFunction>()

function ruleValidator (schema: Record<string, unknown>): ValidateFunction {
  let validate = compiled.get(schema)
  if (validate === undefined) { validate = createValidator(schema); compiled.set(schema, validate) }
  return validate
}

/** Compiles a JSON Schema for validateSource (allErrors: every problem at once). */
export function createValidator (schema: Record<string, unknown>): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true, formats: { 'date-time': isDateTime } })
  // Beside a `pattern`: what the value may hold, in words (a problem says it; editors ignore it).
  ajv.addKeyword({ keyword: 'patternMessage', schemaType: 'string' })
  return ajv.compile(schema)
}

/** RFC 3339 date-time, as test cases write `time:` (no ajv-formats needed for one format). */
function isDateTime (text: string): boolean {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(text) && !Number.isNaN(Date.parse(text))
}

/** Validates the data of a rules file against the rules schema (buildRuleSchema: it names the sink types). */
export function validateRuleFile (source: SourceFile, schema: Record<string, unknown>): RuleProblem[] {
  return validateSource(source, ruleValidator(schema))
}

/** Validates a parsed file against a compiled schema; each ajv error becomes a problem at its node. */
export function validateSource (source: SourceFile, validate: ValidateFunction): RuleProblem[] {
  if (validate(source.data)) return []
  const problems: RuleProblem[] = []
  for (const error of validate.errors ?? []) {
    // A failed anyOf branch is reported once, through its anyOf error.
    if (error.schemaPath.includes('/anyOf/')) continue
    const problem = toProblem(source, error)
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
    case 'pattern': {
      const words = (error.parentSchema as { patternMessage?: string } | undefined)?.patternMessage ?? `must match ${String(params.pattern)}`
      return problemAt(source, path, 'BAD_VALUE', `${field} ${JSON.stringify(valueAt(source.data, path))} ${words}`)
    }
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
