/**
 * JsonLogic compiled to one JavaScript function (new Function), so V8 optimises a whole `where` as
 * one unit instead of a call per node. Covered: constants, constant `var` paths, comparisons,
 * `!`/`!!`, `and`/`or`/`if`, two-argument arithmetic, `in` and `cat`, with exactly the semantics of the
 * closures in logic.ts (the differential tests against json-logic-js run through this path).
 * Any other node is a call to its closure, so every expression compiles.
 *
 * Of the rule's text, only property names of `var` paths reach the source, through JSON.stringify;
 * numbers and strings are passed in as references: a rule cannot inject code.
 */

/** A compiled expression: data in, value out. */
export type Evaluator = (data: unknown) => unknown

export interface CodegenHooks {
  /** Names a value cannot inherit: a path through one of these keeps its closure (own-property check). */
  inherited: ReadonlySet<string>
  truthy: (value: unknown) => boolean
  /** The closure of a node codegen does not cover (built by logic.ts, same semantics). */
  closureFor: (node: unknown) => Evaluator
}

/** JsonLogic comparisons that are JavaScript's operators of the same name. */
const COMPARISONS = new Set(['==', '===', '!=', '!==', '>', '>=', '<', '<='])
const ARITHMETIC = new Set(['+', '*', '-', '/', '%'])

/** The operator of a JsonLogic node: the one own key of a plain object, else undefined (counted without building a key list). */
export function soleKey (node: unknown): string | undefined {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined
  let only: string | undefined
  for (const key in node) {
    if (!Object.hasOwn(node, key)) continue
    if (only !== undefined) return undefined
    only = key
  }
  return only
}

function isPlainValue (x: unknown): boolean {
  return x === null || typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean'
}

class Generator {
  /** Closures and constant objects the generated source refers to as c[i]. */
  readonly refs: unknown[] = []
  private temps = 0

  constructor (readonly hooks: CodegenHooks) {}

  get tempCount (): number {
    return this.temps
  }

  private temp (): string {
    return `t${this.temps++}`
  }

  private ref (value: unknown): string {
    this.refs.push(value)
    return `c[${this.refs.length - 1}]`
  }

  private call (node: unknown): string {
    return `${this.ref(this.hooks.closureFor(node))}(d)`
  }

  /** JavaScript source of an expression over `d` (the rule data). */
  expr (node: unknown): string {
    if (node === null || typeof node === 'boolean') return String(node)
    // Numbers and strings are references, not literals, so rules that differ only in them share one generated function.
    if (typeof node === 'number' || typeof node === 'string') return this.ref(node)
    if (typeof node !== 'object') return this.call(node)
    // A list of plain values is one constant (nothing can change or observe its identity); any other list is evaluated.
    if (Array.isArray(node)) return node.every(isPlainValue) ? this.ref(node) : this.call(node)
    const op = soleKey(node)
    if (op === undefined) return this.ref(node)
    const raw = (node as Record<string, unknown>)[op]
    const args: unknown[] = Array.isArray(raw) ? raw : [raw]
    if (op === 'var') return this.variable(node, args)
    if (COMPARISONS.has(op) && args.length === 2) return `(${this.expr(args[0])} ${op} ${this.expr(args[1])})`
    if (op === '!' && args.length === 1) return `!T(${this.expr(args[0])})`
    if (op === '!!' && args.length === 1) return `T(${this.expr(args[0])})`
    if ((op === 'and' || op === 'or') && args.length >= 1) return this.logical(op, args)
    if ((op === 'if' || op === '?:') && args.length === 3) return `(T(${this.expr(args[0])}) ? ${this.expr(args[1])} : ${this.expr(args[2])})`
    if (args.length === 2 && ARITHMETIC.has(op)) return this.arithmetic(op, args)
    if (op === 'in' && args.length === 2) {
      const x = this.temp()
      const y = this.temp()
      return `((${x} = ${this.expr(args[0])}), (${y} = ${this.expr(args[1])}), (!${y} || typeof ${y}.indexOf === 'undefined') ? false : ${y}.indexOf(${x}) !== -1)`
    }
    if (op === 'cat') return `[${args.map((a) => this.expr(a)).join(', ')}].join('')`
    return this.call(node)
  }

  /** A constant dotted path no value can inherit, read as the closures read it; anything else keeps its closure. */
  private variable (node: unknown, args: unknown[]): string {
    const key = args[0]
    if (args.length !== 1 || typeof key !== 'string' || key === '') return this.call(node)
    const segments = this.pathSegments(key)
    if (segments === undefined) return this.call(node)
    // Each step: a missing (null/undefined) holder gives null; the last value undefined gives null.
    let holder = 'd'
    let out = 'd == null ? null : '
    for (let i = 0; i < segments.length; i++) {
      const t = this.temp()
      const read = `(${t} = ${holder}[${segments[i]}])`
      out += i === segments.length - 1 ? `${read} === undefined ? null : ${t}` : `${read} == null ? null : `
      holder = t
    }
    return `(${out})`
  }

  /** A path's keys as JSON string literals, or undefined when one could be inherited; remembered, since rules repeat paths. */
  private pathSegments (key: string): readonly string[] | undefined {
    let segments = PATHS.get(key)
    if (segments === undefined && !PATHS.has(key)) {
      const keys = key.split('.')
      segments = keys.some((k) => this.hooks.inherited.has(k)) ? undefined : keys.map((k) => JSON.stringify(k))
      if (PATHS.size >= MAX_FACTORIES) PATHS.clear()
      PATHS.set(key, segments)
    }
    return segments
  }

  private logical (op: 'and' | 'or', args: unknown[]): string {
    const t = this.temp()
    // and: the first falsy value, else the last; or: the first truthy value, else the last.
    let source = `(${t} = ${this.expr(args[args.length - 1])})`
    for (let i = args.length - 2; i >= 0; i--) {
      const test = op === 'and' ? `T(${t} = ${this.expr(args[i])})` : `!T(${t} = ${this.expr(args[i])})`
      source = `(${test} ? ${source} : ${t})`
    }
    return source
  }

  private arithmetic (op: string, args: unknown[]): string {
    const a = this.expr(args[0])
    const b = this.expr(args[1])
    switch (op) {
      case '+': return `((0 + parseFloat(${a})) + parseFloat(${b}))`
      case '*': return `(parseFloat(${a}) * parseFloat(${b}))`
      case '-': {
        const x = this.temp()
        const y = this.temp()
        return `((${x} = ${a}), (${y} = ${b}), ${y} === undefined ? -${x} : ${x} - ${y})`
      }
      default: return `(${a} ${op} ${b})`
    }
  }
}

type Factory = (truthy: CodegenHooks['truthy'], refs: unknown[]) => Evaluator

/**
 * Generated factories by source text. 10,000 rules are mostly a few shapes (`{">": [{var: x}, N]}`
 * with different N), so a reload compiles each shape once. Bounded: cleared when full.
 */
const factories = new Map<string, Factory>()
const MAX_FACTORIES = 10_000
/** `var` paths seen, as their keys' JSON literals (undefined: a key could be inherited). Bounded like the factories. */
const PATHS = new Map<string, readonly string[] | undefined>()

/** One function for the whole expression (top scope only: `var` reads the rule data). */
export function generateEvaluator (expression: unknown, hooks: CodegenHooks): Evaluator {
  const generator = new Generator(hooks)
  return instantiate('where', generator, generator.expr(expression))
}

/**
 * One function building a whole `set` object: an object literal, its fields evaluated in order.
 * Keys reach the source through JSON.stringify; `__proto__` is a computed key, so it is an own field
 * as any other, never the prototype.
 */
export function generateRecord (fields: ReadonlyArray<readonly [string, unknown]>, hooks: CodegenHooks): (data: unknown) => Record<string, unknown> {
  const generator = new Generator(hooks)
  const entries = fields.map(([key, expression]) => {
    const name = JSON.stringify(key)
    return `${key === '__proto__' ? `[${name}]` : name}: ${generator.expr(expression)}`
  })
  return instantiate('set', generator, `{ ${entries.join(', ')} }`) as (data: unknown) => Record<string, unknown>
}

function instantiate (name: string, generator: Generator, body: string): Evaluator {
  let temps = ''
  for (let i = 0; i < generator.tempCount; i++) temps += i === 0 ? ' let t0' : `, t${i}`
  const source = `return function ${name} (d) {${temps.length > 0 ? `${temps};` : ''} return ${body} }`
  let factory = factories.get(source)
  if (factory === undefined) {
    if (factories.size >= MAX_FACTORIES) factories.clear()
    // eslint-disable-next-line no-new-func -- the point of this file; see the header
    factory = new Function('T', 'c', source) as Factory
    factories.set(source, factory)
  }
  return factory(generator.hooks.truthy, generator.refs)
}
