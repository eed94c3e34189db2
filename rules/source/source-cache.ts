/**
 * Parsed and validated rules files kept between reloads. Parsing YAML is most of a reload's cost;
 * a file whose text has not changed since the last load is not parsed or validated again, so
 * editing one file of a directory of many costs that file, not all of them. An unchanged file's
 * compiled rules are kept too, as long as the sinks declared across the set (which its outputs
 * name) are the same. A changed file is read whole (on the reloader's parse thread).
 */
import type { CompiledRule } from '../compile/compile.js'
import { readSourceText, type SourceFile } from './load.js'
import { parseAndValidate, type ParsedFile } from './parse-file.js'
import type { RuleProblem } from '../check/problems.js'
import type { SinkEffect } from '../compile/sink-table.js'

/** A file's compile, valid while the declared sinks keep the same fingerprint. */
export interface CachedCompile {
  sinks: string
  rules: CompiledRule[]
  problems: RuleProblem[]
  effects: SinkEffect[]
}

/** A file as last loaded: its source (with the text it was read from) and the schema problems of this file alone. */
type Entry = Extract<ParsedFile, { ok: true }>

/**
 * What the cache has for a file: its load, or a file for the caller to parse (from this text, or
 * read by the parser itself when the cache had nothing to compare it with) and hand to store().
 */
export type CacheLookup = ParsedFile | { ok: 'unparsed', text: string | undefined }

export class SourceCache {
  private readonly entries = new Map<string, Entry>()
  private readonly compiles = new WeakMap<SourceFile, CachedCompile>()
  /** Loads that found the file unchanged (for tests and the reload log). */
  hits = 0

  /** Reads a file; parses and validates it unless its text is what it was last time. */
  load (file: string, schema: Record<string, unknown>): ParsedFile {
    const found = this.lookup(file)
    return found.ok === 'unparsed' ? this.store(file, parseAndValidate(file, found.text, schema)) : found
  }

  /** Reads a file: unchanged since the last load, it is done here; otherwise it comes back for the caller to parse. */
  lookup (file: string): CacheLookup {
    const cached = this.entries.get(file)
    if (cached === undefined) return { ok: 'unparsed', text: undefined }
    const read = readSourceText(file)
    if (!read.ok) { this.entries.delete(file); return read }
    if (cached.source.text !== read.text) return { ok: 'unparsed', text: read.text }
    this.hits++
    return cached
  }

  /** Keeps a file's parse for the next load. */
  store (file: string, parsed: ParsedFile): ParsedFile {
    if (parsed.ok) this.entries.set(file, parsed)
    else this.entries.delete(file)
    return parsed
  }

  /** The compile of this parsed file against sinks with this fingerprint, if kept. */
  compiled (source: SourceFile, sinks: string): CachedCompile | undefined {
    const c = this.compiles.get(source)
    return c !== undefined && c.sinks === sinks ? c : undefined
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
