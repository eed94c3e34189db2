/**
 * The `sinks:` of a rule set: declared in any file, shared by all of them. Each declaration is
 * checked by its type (beyond the schema, no I/O); shorthand outputs add one implicit default
 * sink per type when none of that type is declared.
 */
import { dirname, resolve } from 'node:path'
import type { SinkDefinition, SinkSpec } from '../model/sink-spec.js'
import { resolveEnvRefs } from './env-refs.js'
import { lazyPositionOf, problemAt, type SourceFile, type SourcePosition } from '../source/load.js'
import type { RuleProblem } from '../check/problems.js'

const SINK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

/** Every sink of a rule set, by name; grows implicit sinks as shorthand outputs compile. */
export class SinkTable {
  private readonly declared = new Map<string, SinkDefinition>()
  private readonly implicit = new Map<string, SinkDefinition>()
  private readonly used = new Set<string>()
  private readonly sources = new Map<string, SourceFile>()
  /** While a file compiles: what it did to this table, so a cached compile can do it again. */
  private recording: SinkEffect[] | undefined

  /** The sink types a rules file may name (adapters/sink-specs.ts). */
  constructor (readonly specs: readonly SinkSpec[]) {}

  /** The spec of a sink type, if it is one. */
  spec (type: string): SinkSpec | undefined {
    return this.specs.find((t) => t.type === type)
  }

  /** Reads one file's `sinks:`; reports bad names, bad option values and duplicates across files. */
  addFile (source: SourceFile, problems: RuleProblem[]): void {
    const sinks = (source.data as { sinks?: unknown } | null)?.sinks
    if (sinks === null || typeof sinks !== 'object' || Array.isArray(sinks)) return
    for (const [name, raw] of Object.entries(sinks as Record<string, unknown>)) {
      const path = ['sinks', name]
      if (!SINK_NAME.test(name) || name.length > 128) {
        problems.push(problemAt(source, path, 'BAD_VALUE', `sink name '${name}' may hold only letters, digits, '_', '.' and '-', and must start with a letter or digit`, { atKey: true }))
        continue
      }
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) continue
      const { type, ...written } = raw as Record<string, unknown>
      const kind = typeof type === 'string' ? this.spec(type) : undefined
      if (kind === undefined) continue // the schema reported it
      const first = this.declared.get(name)
      if (first !== undefined) {
        problems.push(problemAt(source, path, 'DUPLICATE_SINK', `sink name '${name}' is already declared at ${first.declaredAt}`, { atKey: true }))
        continue
      }
      const { value: options, unset } = resolveEnvRefs(written)
      for (const u of unset) problems.push(problemAt(source, [...path, ...u.path], 'UNSET_ENV', `sink '${name}': environment variable ${u.name} is not set (\${env:${u.name}})`))
      // An option whose variable is unset is reported once, as that, not also as a bad value.
      const optionProblems = unset.length > 0 ? [] : kind.validate(options)
      for (const p of optionProblems) problems.push(problemAt(source, [...path, ...p.path], 'BAD_VALUE', `sink '${name}': ${p.message}`))
      this.sources.set(name, source)
      this.declared.set(name, definition({ name, type: kind.type, options, baseDir: baseDirOf(source), implicit: false }, lazyPositionOf(source, path, { atKey: true })))
    }
  }

  get (name: string): SinkDefinition | undefined {
    return this.declared.get(name)
  }

  names (): string[] {
    return [...this.declared.keys()]
  }

  /**
   * The sink behind a shorthand output of this type: the one declared, or the implicit default.
   * Several declared sinks of the type make the shorthand ambiguous: returns their names.
   */
  forShorthand (kind: SinkSpec, declaredAt: SourcePosition, baseDir: string): SinkDefinition | { ambiguous: string[] } {
    this.recording?.push({ kind: 'shorthand', type: kind, declaredAt, baseDir })
    const ofType = [...this.declared.values()].filter((d) => d.type === kind.type)
    if (ofType.length === 1) return ofType[0]
    if (ofType.length > 1) return { ambiguous: ofType.map((d) => d.name) }
    let sink = this.implicit.get(kind.type)
    if (sink === undefined) {
      // Named after its type, unless a declared sink of another type already has that name.
      const name = this.declared.has(kind.type) ? `default-${kind.type}` : kind.type
      sink = definition({ name, type: kind.type, options: { ...kind.shorthand?.defaults }, baseDir, implicit: true }, declaredAt)
      this.implicit.set(kind.type, sink)
    }
    return sink
  }

  markUsed (name: string): void {
    this.recording?.push({ kind: 'used', name })
    this.used.add(name)
  }

  /**
   * What a file's compile depends on here: the declared sinks (names, types and options, whose
   * defaults outputs inherit). A file compiled against the same fingerprint compiles the same.
   */
  fingerprint (): string {
    return JSON.stringify([...this.declared.values()].map((d) => [d.name, d.type, d.options, d.baseDir]))
  }

  /** Runs a file's compile (in steps) and returns what it did to the table along with its result, so a cached compile can do it again (replay). */
  * recordSteps<T> (steps: Generator<undefined, T>): Generator<undefined, { result: T, effects: SinkEffect[] }> {
    const effects: SinkEffect[] = []
    for (;;) {
      const outer = this.recording
      this.recording = effects
      let step: IteratorResult<undefined, T>
      try {
        step = steps.next()
      } finally {
        this.recording = outer
      }
      if (step.done === true) {
        outer?.push(...effects)
        return { result: step.value, effects }
      }
      yield
    }
  }

  /** Does to the table what a recorded compile did (sinks used, implicit sinks created, in order). */
  replay (effects: readonly SinkEffect[]): void {
    for (const e of effects) {
      if (e.kind === 'used') this.markUsed(e.name)
      else this.forShorthand(e.type, e.declaredAt, e.baseDir)
    }
  }

  /** A warning for each declared sink that no output uses (it is still started). */
  unusedWarnings (): RuleProblem[] {
    return [...this.declared.values()].filter((d) => !this.used.has(d.name)).map((d) =>
      problemAt(this.sources.get(d.name)!, ['sinks', d.name], 'UNUSED_SINK', `sink '${d.name}' is not used by any output`, { atKey: true, severity: 'warning' }))
  }

  /** Every sink to start: the declared ones, then the implicit ones that outputs used. */
  all (): SinkDefinition[] {
    return [...this.declared.values(), ...this.implicit.values()]
  }
}

/** One thing a file's compile did to the sink table. */
export type SinkEffect =
  | { kind: 'used', name: string }
  | { kind: 'shorthand', type: SinkSpec, declaredAt: SourcePosition, baseDir: string }

/**
 * A definition whose `declaredAt` is worked out when read (only a duplicate's message reads it):
 * finding a position may need the file's full YAML document.
 */
function definition (fields: Omit<SinkDefinition, 'declaredAt'>, at: SourcePosition): SinkDefinition {
  return Object.defineProperty(fields, 'declaredAt', { get: () => `${at.file}:${at.line}:${at.col}`, enumerable: false }) as SinkDefinition
}

/** Relative paths in a file resolve against its directory. */
export function baseDirOf (source: SourceFile): string {
  return dirname(resolve(source.file))
}
