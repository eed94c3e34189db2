/**
 * Parsed and validated rules files kept between reloads. Parsing YAML is most of a reload's cost;
 * a file whose text has not changed since the last load is not parsed or validated again, so
 * editing one file of a directory of many costs that file, not all of them. An unchanged file's
 * compiled rules are kept too, as long as the sinks declared across the set (which its outputs
 * name) are the same. A file edited inside its rules is read from its last read (only the rules the
 * edit touches are parsed and compiled again).
 */
import type { CompiledRule, KeptRules } from '../compile/compile.js'
import { parseEdited, readSourceText, type SourceFile } from './load.js'
import { parseAndValidate, type ParsedFile } from './parse-file.js'
import type { RuleProblem } from '../check/problems.js'
import type { SinkEffect } from '../compile/sink-table.js'
import { validateEdited, validateRuleFile } from '../check/validate.js'

/** A file's compile, valid while the declared sinks keep the same fingerprint. */
export interface CachedCompile {
  sinks: string
  rules: CompiledRule[]
  problems: RuleProblem[]
  effects: SinkEffect[]
  /** Its rules' compiles by data object, for the next read of the file (compile.ts). */
  kept: KeptRules
}

interface Entry {
  text: string
  source: SourceFile
  /** Schema problems of this file alone. */
  problems: RuleProblem[]
}

export type CachedLoad = ParsedFile

/**
 * What the cache has for a file: its load, or a file for the caller to parse (from this text, or
 * read by the parser itself when the cache had nothing to compare it with) and hand to store().
 */
export type CacheLookup = CachedLoad | { ok: 'unparsed', text: string | undefined }

export class SourceCache {
  private readonly entries = new Map<string, Entry>()
  private readonly compiles = new WeakMap<SourceFile, CachedCompile>()
  /** A file read from its last read after an edit → that last read (whose rules it shares). */
  private readonly previous = new WeakMap<SourceFile, SourceFile>()
  /** Loads that read only the edited rules of a file (for tests and the reload log). */
  edits = 0
  /** Loads that found the file unchanged (for tests and the reload log). */
  hits = 0

  /** Reads a file; parses and validates it unless its text is what it was last time. */
  load (file: string, schema: Record<string, unknown>): CachedLoad {
    const found = this.lookup(file, schema)
    return found.ok === 'unparsed' ? this.store(file, parseAndValidate(file, found.text, schema)) : found
  }

  /**
   * Reads a file: unchanged since the last load, or edited inside its rules (read from its last
   * read, only the rules the edit touches parsed), it is done here; otherwise its text comes back
   * for the caller to parse.
   */
  lookup (file: string, schema: Record<string, unknown>): CacheLookup {
    const cached = this.entries.get(file)
    if (cached === undefined) return { ok: 'unparsed', text: undefined }
    const read = readSourceText(file)
    if (!read.ok) { this.entries.delete(file); return read }
    if (cached.text === read.text) {
      this.hits++
      return { ok: true, source: cached.source, problems: cached.problems }
    }
    const edited = parseEdited(file, read.text, cached.source)
    if (edited === undefined) return { ok: 'unparsed', text: read.text }
    const problems = cached.problems.length === 0 ? validateEdited(edited, keptRules(cached.source), schema) : validateRuleFile(edited, schema)
    // Placing problems may need the whole file's yaml document: that is the parser's work (on the
    // reloader's thread), and a file with problems keeps no compiles worth reading it here for.
    if (problems.length > 0) return { ok: 'unparsed', text: read.text }
    this.edits++
    // One link only: the last read, not the whole history of a file's edits.
    this.previous.delete(cached.source)
    this.previous.set(edited, cached.source)
    return this.store(file, { ok: true, source: edited, problems })
  }

  /** Keeps a file's parse for the next load. */
  store (file: string, parsed: ParsedFile): CachedLoad {
    if (!parsed.ok) { this.entries.delete(file); return parsed }
    this.entries.set(file, { text: parsed.source.text, source: parsed.source, problems: parsed.problems })
    return parsed
  }

  /** The compile of this parsed file against sinks with this fingerprint, if kept. */
  compiled (source: SourceFile, sinks: string): CachedCompile | undefined {
    const c = this.compiles.get(source)
    return c !== undefined && c.sinks === sinks ? c : undefined
  }

  /** The kept rules of the read this one was edited from, if compiled against sinks with this fingerprint. */
  keptBefore (source: SourceFile, sinks: string): KeptRules | undefined {
    const before = this.previous.get(source)
    this.previous.delete(source)
    return before === undefined ? undefined : this.compiled(before, sinks)?.kept
  }

  keepCompiled (source: SourceFile, compiled: CachedCompile): void {
    this.compiles.set(source, compiled)
  }

  /** Forgets files that are no longer part of the rule set. */
  retain (files: readonly string[]): void {
    const keep = new Set(files)
    for (const file of this.entries.keys()) if (!keep.has(file)) this.entries.delete(file)
  }
}

/** The rule data objects of a read: an edit read from it keeps those it did not touch. */
function keptRules (source: SourceFile): Set<unknown> {
  const rules = (source.data as { rules?: unknown } | null)?.rules
  return new Set(Array.isArray(rules) ? rules : [])
}
