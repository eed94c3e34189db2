/**
 * JsonLogic compiled once into closures. json-logic-js 2.0.5 is the reference: every operator
 * here mirrors its semantics (truthiness, loose equality, parseFloat in '+' and '*', eager
 * argument evaluation), and test/unit/logic.test.ts proves it on the official suite and random input.
 * The one deliberate difference: 'var' reads own properties only, so a rule cannot reach
 * prototype members such as 'constructor' or '__proto__'.
 */

import { generateEvaluator, generateRecord, soleKey, type CodegenHooks, type Evaluator } from './logic-codegen.js'

/** What a rule sees for one message: the JsonLogic data and the template scope. */
export interface RuleData {
  topic: string
  params: Record<string, string>
  payload: unknown
  meta: MessageMeta
}

/** Message facts a rule may read as `meta.*`. */
export interface MessageMeta {
  clientId: string | null
  qos: number
  retain: boolean
  /** Milliseconds since the epoch. */
  receivedAt: number
  /** How many rules this message has already passed through (0 for a client's publish). */
  hops: number
}

/** A compiled expression: call it with the data; it may throw for a bad input (counted by the engine). */
export type { Evaluator } from './logic-codegen.js'

/** What a compiled expression reads, so the engine decodes a payload only when a rule needs it. */
export interface LogicUsage {
  /** Reads `payload` in any way. */
  payload: boolean
  /** Reads a field below `payload` (`payload.x`), which needs a JSON payload. */
  payloadFields: boolean
  /**
   * The top-level payload fields read (`payload.room.name` reads `room`), so the engine can decode
   * only those; null when the payload is read whole, or through a name computed per message.
   */
  topFields: readonly string[] | null
  /** Reads `meta.receivedAt` (or `meta` whole, or a name computed per message): the engine reads the clock. */
  clock: boolean
}

/**
 * No fields read: an array, not a Set, since an expression reads a field or two and a rule set
 * compiles thousands of them. Never changed in place (addField replaces it).
 */
const NO_FIELDS: readonly string[] = Object.freeze([])

/** Nothing read yet. */
export function emptyUsage (): LogicUsage {
  return { payload: false, payloadFields: false, topFields: NO_FIELDS, clock: false }
}

/** Notes a top-level payload field read (nothing once the payload is read whole). */
export function addField (usage: LogicUsage, field: string): void {
  if (usage.topFields === null || usage.topFields.includes(field)) return
  // A new array each time, never a push: usages share arrays (and a pushed one reserves 17 slots).
  usage.topFields = usage.topFields.length === 0 ? [field] : usage.topFields.concat(field)
}

/** Adds what `other` reads to `usage`. */
export function addUsage (usage: LogicUsage, other: LogicUsage): void {
  usage.payload ||= other.payload
  usage.payloadFields ||= other.payloadFields
  usage.clock ||= other.clock
  if (other.topFields === null) usage.topFields = null
  // Arrays are never changed in place, so the first one can be shared.
  else if (usage.topFields !== null && usage.topFields.length === 0) usage.topFields = other.topFields
  else for (const field of other.topFields) addField(usage, field)
}

/** A compile error, pointing at the node (or the operator key, with atKey) at fault. */
export interface LogicError {
  code: 'UNKNOWN_OPERATOR' | 'BAD_EXPRESSION'
  message: string
  path: Array<string | number>
  atKey: boolean
}

export interface LogicOptions {
  /** Where `{"log": x}` writes; json-logic-js uses console.log, the engine passes its logger. */
  log?: (value: unknown) => void
  /** False: run the closures alone, without generating a function (tests compare the two). */
  codegen?: boolean
}

/** Deeper expressions are refused: they are never what a rule author meant, and recursion has limits. */
export const MAX_EXPRESSION_DEPTH = 200

/** Every operator json-logic-js 2.0.5 knows, for messages and editor hints. */
export const OPERATORS: readonly string[] = [
  '==', '===', '!=', '!==', '>', '>=', '<', '<=', '!!', '!', '%', 'log', 'in', 'cat', 'substr',
  '+', '*', '-', '/', 'min', 'max', 'merge', 'var', 'missing', 'missing_some',
  'if', '?:', 'and', 'or', 'filter', 'map', 'reduce', 'all', 'none', 'some'
]
const KNOWN = new Set(OPERATORS)

class CompileError extends Error {
  constructor (readonly detail: LogicError) {
    super(detail.message)
    this.name = 'CompileError'
  }
}

/** JsonLogic truthiness: like JavaScript, except that an empty array is false. */
export function truthy (value: unknown): boolean {
  if (Array.isArray(value) && value.length === 0) return false
  return !!value
}

/** Compiles an expression; the usage tells which parts of the data it reads. */
export function compileLogic (
  expression: unknown, options: LogicOptions = {}
): { ok: true, evaluate: Evaluator, usage: LogicUsage } | { ok: false, error: LogicError } {
  const checked = checkLogic(expression)
  if (!checked.ok) return checked
  // The closures are the reference; the generated function, one unit for V8 to optimise, is what
  // runs, with closures only for the nodes it does not cover.
  const compiler = new Compiler(options)
  const evaluate = options.codegen === false ? compiler.build(expression, [], 0, true) : generateEvaluator(expression, hooksFor(compiler))
  return { ok: true, evaluate, usage: checked.usage }
}

/**
 * Checks an expression (operators, depth) and finds what it reads, without building anything:
 * the same walk as the closures', so it fails exactly where building them would.
 */
export function checkLogic (expression: unknown): { ok: true, usage: LogicUsage } | { ok: false, error: LogicError } {
  const compiler = new Compiler({}, true)
  try {
    compiler.build(expression, [], 0, true)
    return { ok: true, usage: compiler.usage }
  } catch (err) {
    if (err instanceof CompileError) return { ok: false, error: err.detail }
    if (err instanceof RangeError) {
      return { ok: false, error: { code: 'BAD_EXPRESSION', message: 'expression is nested too deeply', path: [], atKey: false } }
    }
    throw err
  }
}

/**
 * The builder of a `set` object from expressions already checked (checkLogic): one generated
 * function for the whole object, or (codegen: false) the closures writing the fields in order.
 */
export function compileRecord (fields: ReadonlyArray<readonly [string, unknown]>, options: LogicOptions = {}): (data: unknown) => Record<string, unknown> {
  const compiler = new Compiler(options)
  if (options.codegen !== false) return generateRecord(fields, hooksFor(compiler))
  const closures = fields.map(([key, expression]) => [key, compiler.build(expression, [], 0, true)] as const)
  return (d) => {
    const out: Record<string, unknown> = {}
    // defineProperty, not assignment: a field named __proto__ is a field, as in the generated literal.
    for (let i = 0; i < closures.length; i++) Object.defineProperty(out, closures[i][0], { value: closures[i][1](d), enumerable: true, writable: true, configurable: true })
    return out
  }
}

function hooksFor (compiler: Compiler): CodegenHooks {
  return { inherited: INHERITED, truthy, closureFor: (node) => compiler.build(node, [], 0, true) }
}

function isLogic (node: unknown): node is Record<string, unknown> {
  return soleKey(node) !== undefined
}

function constant (value: unknown): Evaluator {
  return () => value
}

type Path = Array<string | number>

/** The usage of a build, which never records any. */
const NOT_LOOKED: LogicUsage = Object.freeze({ payload: false, payloadFields: false, topFields: NO_FIELDS, clock: false })

/** Length of 'payload.', where a var path's top-level payload field starts. */
const PAYLOAD_PREFIX = 'payload.'.length
/**
 * Top-level field by var path ('payload.room.name' → 'room'): rules repeat paths, and one string per
 * field lets a rule set's fields be merged by identity. Bounded like the codegen caches.
 */
const FIELD_OF_PATH = new Map<string, string>()
const MAX_TOP_FIELDS = 10_000

function topFieldOf (path: string): string {
  let field = FIELD_OF_PATH.get(path)
  if (field === undefined) {
    const end = path.indexOf('.', PAYLOAD_PREFIX)
    field = path.slice(PAYLOAD_PREFIX, end === -1 ? path.length : end)
    if (FIELD_OF_PATH.size >= MAX_TOP_FIELDS) FIELD_OF_PATH.clear()
    FIELD_OF_PATH.set(path, field)
  }
  return field
}

/** Returned by a dry walk (checkLogic), which builds nothing. */
const UNBUILT: Evaluator = () => undefined
const NO_ARGS: Evaluator[] = []

class Compiler {
  /** What a dry walk found the expression reads; a build does not look (a rule set builds thousands). */
  readonly usage: LogicUsage

  /** `dry`: walk and check only; every node gives UNBUILT. */
  constructor (private readonly options: LogicOptions, private readonly dry = false) {
    this.usage = dry ? emptyUsage() : NOT_LOOKED
  }

  /**
   * `topScope` is false inside map/filter/…, where 'var' reads the element, not the message.
   * `path` is one stack for the whole walk (pushed and popped), copied only into an error.
   */
  build (node: unknown, path: Path, depth: number, topScope: boolean): Evaluator {
    if (depth > MAX_EXPRESSION_DEPTH) {
      throw new CompileError({ code: 'BAD_EXPRESSION', message: `expression nests deeper than ${MAX_EXPRESSION_DEPTH} levels`, path: [...path], atKey: false })
    }
    if (Array.isArray(node)) {
      const items = this.dry ? NO_ARGS : new Array<Evaluator>(node.length)
      for (let i = 0; i < node.length; i++) {
        path.push(i)
        const built = this.build(node[i], path, depth + 1, topScope)
        if (!this.dry) items[i] = built
        path.pop()
      }
      if (this.dry) return UNBUILT
      return (d) => {
        const out = new Array(items.length)
        for (let i = 0; i < items.length; i++) out[i] = items[i](d)
        return out
      }
    }
    const op = soleKey(node)
    if (op === undefined) return this.dry ? UNBUILT : constant(node)
    const raw = (node as Record<string, unknown>)[op]
    const listed = Array.isArray(raw)
    const rawArgs: unknown[] = listed ? raw : [raw]
    if (!KNOWN.has(op)) {
      throw new CompileError({ code: 'UNKNOWN_OPERATOR', message: `unknown JsonLogic operator '${op}'${suggest(op)}`, path: [...path, op], atKey: true })
    }
    path.push(op)
    let built: Evaluator
    switch (op) {
      case 'filter': case 'map': case 'all': case 'none': case 'some': {
        const source = this.arg(rawArgs, listed, 0, path, depth, topScope)
        const each = this.arg(rawArgs, listed, 1, path, depth, false)
        built = this.dry ? UNBUILT : compileScoped(op, source, each)
        break
      }
      case 'reduce': {
        const source = this.arg(rawArgs, listed, 0, path, depth, topScope)
        const step = this.arg(rawArgs, listed, 1, path, depth, false)
        const initial = rawArgs.length > 2 && rawArgs[2] !== undefined ? this.arg(rawArgs, listed, 2, path, depth, topScope) : undefined
        built = this.dry ? UNBUILT : compileReduce(source, step, initial)
        break
      }
      default: {
        if (op === 'var') this.noteVar(rawArgs[0], topScope)
        if (op === 'missing' || op === 'missing_some') this.noteKeys(op, rawArgs, topScope)
        const fs = this.args(rawArgs, listed, path, depth, topScope)
        built = this.dry ? UNBUILT : this.operation(op, fs, rawArgs)
      }
    }
    path.pop()
    return built
  }

  private arg (rawArgs: unknown[], listed: boolean, i: number, path: Path, depth: number, scope: boolean): Evaluator {
    if (i >= rawArgs.length) return this.dry ? UNBUILT : constant(undefined)
    if (listed) path.push(i)
    const built = this.build(rawArgs[i], path, depth + 1, scope)
    if (listed) path.pop()
    return built
  }

  /** Every argument, in the node's scope; a dry walk gives no list. */
  private args (rawArgs: unknown[], listed: boolean, path: Path, depth: number, scope: boolean): Evaluator[] {
    const out = this.dry ? NO_ARGS : new Array<Evaluator>(rawArgs.length)
    for (let i = 0; i < rawArgs.length; i++) {
      const built = this.arg(rawArgs, listed, i, path, depth, scope)
      if (!this.dry) out[i] = built
    }
    return out
  }

  private operation (op: string, fs: Evaluator[], rawArgs: unknown[]): Evaluator {
    switch (op) {
      case 'if': case '?:': return compileIf(fs)
      case 'and': return compileAnd(fs)
      case 'or': return compileOr(fs)
      case 'var': return compileVar(fs, rawArgs)
      case 'log': return compileLog(fs, this.options.log ?? ((v) => console.log(v)))
      default: return compileOperation(op, fs)
    }
  }

  private noteVar (key: unknown, topScope: boolean): void {
    // Only the dry walk's usage is read (checkLogic); a build would find the same.
    if (!topScope || !this.dry) return
    if (isLogic(key) || Array.isArray(key) || key === undefined || key === null || key === '') {
      this.readsWholePayload()
      this.usage.clock = true
      return
    }
    const name = String(key)
    if (name === 'meta' || name.startsWith('meta.receivedAt')) this.usage.clock = true
    if (name === 'payload') this.readsWholePayload()
    else if (name.startsWith('payload.')) {
      this.usage.payload = true
      this.usage.payloadFields = true
      addField(this.usage, topFieldOf(name))
    }
  }

  /** The whole payload, or any part of the data: a name computed per message can be any of them. */
  private readsWholePayload (): void {
    this.usage.payload = true
    this.usage.topFields = null
  }

  private noteKeys (op: string, rawArgs: unknown[], topScope: boolean): void {
    const keys = op === 'missing_some' ? rawArgs[1] : (Array.isArray(rawArgs[0]) ? rawArgs[0] : rawArgs)
    if (Array.isArray(keys)) for (const k of keys) this.noteVar(k, topScope)
    else this.noteVar(keys, topScope)
  }
}

function compileIf (fs: Evaluator[]): Evaluator {
  if (fs.length === 3) {
    const [c, t, e] = fs
    return (d) => truthy(c(d)) ? t(d) : e(d)
  }
  return (d) => {
    let i = 0
    for (; i < fs.length - 1; i += 2) {
      if (truthy(fs[i](d))) return fs[i + 1](d)
    }
    return fs.length === i + 1 ? fs[i](d) : null
  }
}

function compileAnd (fs: Evaluator[]): Evaluator {
  if (fs.length === 2) {
    const [a, b] = fs
    return (d) => { const x = a(d); return truthy(x) ? b(d) : x }
  }
  return (d) => {
    let current: unknown
    for (let i = 0; i < fs.length; i++) {
      current = fs[i](d)
      if (!truthy(current)) return current
    }
    return current
  }
}

function compileOr (fs: Evaluator[]): Evaluator {
  if (fs.length === 2) {
    const [a, b] = fs
    return (d) => { const x = a(d); return truthy(x) ? x : b(d) }
  }
  return (d) => {
    let current: unknown
    for (let i = 0; i < fs.length; i++) {
      current = fs[i](d)
      if (truthy(current)) return current
    }
    return current
  }
}

function compileScoped (op: string, source: Evaluator, each: Evaluator): Evaluator {
  switch (op) {
    case 'filter': return (d) => { const xs = source(d); return Array.isArray(xs) ? xs.filter((x) => truthy(each(x))) : [] }
    case 'map': return (d) => { const xs = source(d); return Array.isArray(xs) ? xs.map((x) => each(x)) : [] }
    case 'all': return (d) => {
      const xs = source(d)
      if (!Array.isArray(xs) || xs.length === 0) return false
      for (const x of xs) if (!truthy(each(x))) return false
      return true
    }
    case 'none': return (d) => {
      const xs = source(d)
      if (!Array.isArray(xs) || xs.length === 0) return true
      for (const x of xs) if (truthy(each(x))) return false
      return true
    }
    default: return (d) => {
      const xs = source(d)
      if (!Array.isArray(xs) || xs.length === 0) return false
      for (const x of xs) if (truthy(each(x))) return true
      return false
    }
  }
}

function compileReduce (source: Evaluator, step: Evaluator, initial: Evaluator | undefined): Evaluator {
  return (d) => {
    const xs = source(d)
    const start = initial === undefined ? null : initial(d)
    if (!Array.isArray(xs)) return start
    return xs.reduce((accumulator: unknown, current: unknown) => step({ current, accumulator }), start)
  }
}

/**
 * Property names some JSON value could inherit (from Object, Array, String, Number or Boolean
 * prototypes). Only these need the own-property check; any other key is read directly, which is
 * what makes a compiled 'var' cheap.
 */
const INHERITED = new Set<string>(
  [Object.prototype, Array.prototype, String.prototype, Number.prototype, Boolean.prototype]
    .flatMap((proto) => Object.getOwnPropertyNames(proto))
    .filter((k) => k !== 'length')
)

/** Reads one property the way json-logic-js does, but never an inherited one. */
function readProperty (data: unknown, key: string): unknown {
  if (data === null || data === undefined) return undefined
  if (INHERITED.has(key) && !Object.hasOwn(Object(data), key)) return undefined
  return (data as Record<string, unknown>)[key]
}

function readPath (data: unknown, segments: string[], notFound: unknown): unknown {
  let value = data
  for (let i = 0; i < segments.length; i++) {
    if (value === null || value === undefined) return notFound
    value = readProperty(value, segments[i])
    if (value === undefined) return notFound
  }
  return value
}

/** A constant path of one or two keys that no value can inherit: read directly, no loop. */
function compileDirectPath (segments: string[]): Evaluator | undefined {
  if (segments.some((k) => INHERITED.has(k))) return undefined
  if (segments.length === 1) {
    const [k0] = segments
    return (d: any) => { if (d === null || d === undefined) return null; const v = d[k0]; return v === undefined ? null : v }
  }
  if (segments.length === 2) {
    const [k0, k1] = segments
    return (d: any) => {
      if (d === null || d === undefined) return null
      const a = d[k0]
      if (a === null || a === undefined) return null
      const v = a[k1]
      return v === undefined ? null : v
    }
  }
  return undefined
}

function readVar (data: unknown, key: unknown, fallback: unknown): unknown {
  const notFound = fallback === undefined ? null : fallback
  if (key === undefined || key === '' || key === null) return data
  return readPath(data, String(key).split('.'), notFound)
}

function compileVar (fs: Evaluator[], rawArgs: unknown[]): Evaluator {
  const [keyF, fallbackF] = [fs[0] ?? constant(undefined), fs[1] ?? constant(undefined)]
  // The common case, a constant dotted path, is split once here rather than per message.
  const key = rawArgs[0]
  if (fs.length === 1 && typeof key === 'string' && key !== '') {
    const segments = key.split('.')
    return compileDirectPath(segments) ?? ((d) => readPath(d, segments, null))
  }
  const rest = fs.slice(2)
  return (d) => {
    const k = keyF(d)
    const fb = fallbackF(d)
    for (const f of rest) f(d)
    return readVar(d, k, fb)
  }
}

function missingKeys (data: unknown, keys: ArrayLike<unknown>): unknown[] {
  const missing: unknown[] = []
  for (let i = 0; i < keys.length; i++) {
    // The reference reads each key as {"var": key}, so an array key is [name, fallback].
    const key = keys[i]
    const value = Array.isArray(key) ? readVar(data, key[0], key[1]) : readVar(data, key, undefined)
    if (value === null || value === '') missing.push(keys[i])
  }
  return missing
}

function compileLog (fs: Evaluator[], log: (value: unknown) => void): Evaluator {
  return (d) => {
    const values = fs.map((f) => f(d))
    log(values[0])
    return values[0]
  }
}

type Operation = (data: unknown, ...values: any[]) => unknown

/** The eagerly evaluated operators, written as json-logic-js defines them. */
const OPERATIONS: Record<string, Operation> = {
  // Loose equality is the reference's semantics (jsonlogic.com spec: '==' is JavaScript's).
  // eslint-disable-next-line eqeqeq
  '==': (_, a, b) => a == b,
  '===': (_, a, b) => a === b,
  // eslint-disable-next-line eqeqeq
  '!=': (_, a, b) => a != b,
  '!==': (_, a, b) => a !== b,
  '>': (_, a, b) => a > b,
  '>=': (_, a, b) => a >= b,
  '<': (_, a, b, c) => c === undefined ? a < b : (a < b) && (b < c),
  '<=': (_, a, b, c) => c === undefined ? a <= b : (a <= b) && (b <= c),
  '!!': (_, a) => truthy(a),
  '!': (_, a) => !truthy(a),
  '%': (_, a, b) => a % b,
  in: (_, a, b) => (!b || typeof b.indexOf === 'undefined') ? false : b.indexOf(a) !== -1,
  cat: (_, ...values) => values.join(''),
  substr: (_, source, start, end) => {
    if (end < 0) {
      const temp = String(source).substr(start)
      return temp.substr(0, temp.length + end)
    }
    return String(source).substr(start, end)
  },
  '+': (_, ...values) => values.reduce((a: any, b: any) => parseFloat(a) + parseFloat(b), 0),
  // No initial value, as in the reference: one argument comes back unchanged, none throws.
  '*': (_, ...values) => values.reduce((a: any, b: any) => parseFloat(a) * parseFloat(b)),
  '-': (_, a, b) => b === undefined ? -a : a - b,
  '/': (_, a, b) => a / b,
  min: (_, ...values) => Math.min(...values),
  max: (_, ...values) => Math.max(...values),
  merge: (_, ...values) => values.reduce((a: unknown[], b: unknown) => a.concat(b), []),
  missing: (data, ...values) => missingKeys(data, Array.isArray(values[0]) ? values[0] : values),
  missing_some: (data, needCount, options) => {
    const areMissing = missingKeys(data, Array.isArray(options) ? options : [options])
    return options.length - areMissing.length >= needCount ? [] : areMissing
  }
}

function compileOperation (op: string, fs: Evaluator[]): Evaluator {
  const fast = compileFastPath(op, fs)
  if (fast !== undefined) return fast
  const impl = OPERATIONS[op]
  const n = fs.length
  return (d) => {
    const values = new Array(n)
    for (let i = 0; i < n; i++) values[i] = fs[i](d)
    return impl(d, ...values)
  }
}

/** Allocation-free versions of the hottest shapes; each equals the generic operation. */
function compileFastPath (op: string, fs: Evaluator[]): Evaluator | undefined {
  if (fs.length === 1) {
    const [a] = fs
    switch (op) {
      case '!': return (d) => !truthy(a(d))
      case '!!': return (d) => truthy(a(d))
      case '-': return (d) => { const x: any = a(d); return -x }
    }
    return undefined
  }
  if (fs.length !== 2) return undefined
  const [a, b] = fs
  switch (op) {
    // eslint-disable-next-line eqeqeq
    case '==': return (d) => a(d) == b(d)
    case '===': return (d) => a(d) === b(d)
    // eslint-disable-next-line eqeqeq
    case '!=': return (d) => a(d) != b(d)
    case '!==': return (d) => a(d) !== b(d)
    case '>': return (d) => (a(d) as any) > (b(d) as any)
    case '>=': return (d) => (a(d) as any) >= (b(d) as any)
    case '<': return (d) => (a(d) as any) < (b(d) as any)
    case '<=': return (d) => (a(d) as any) <= (b(d) as any)
    case '+': return (d) => { const x: any = a(d); const y: any = b(d); return (0 + parseFloat(x)) + parseFloat(y) }
    case '*': return (d) => { const x: any = a(d); const y: any = b(d); return parseFloat(x) * parseFloat(y) }
    case '-': return (d) => { const x: any = a(d); const y: any = b(d); return y === undefined ? -x : x - y }
    case '/': return (d) => { const x: any = a(d); const y: any = b(d); return x / y }
    case '%': return (d) => { const x: any = a(d); const y: any = b(d); return x % y }
  }
  return undefined
}

function suggest (op: string): string {
  const sameLetters = (a: string, b: string): boolean => [...a].sort().join('') === [...b].sort().join('')
  let best: string | undefined
  let bestScore = 3
  for (const known of OPERATORS) {
    // A swap of the same characters ('=>' for '>=') beats a different character at the same distance.
    const score = editDistance(op.toLowerCase(), known) - (sameLetters(op, known) ? 0.5 : 0)
    if (score < bestScore) { best = known; bestScore = score }
  }
  return best === undefined ? '' : ` (did you mean '${best}'?)`
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment), for "did you mean" hints. */
export function editDistance (a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i === 0 ? j : j === 0 ? i : 0))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}
