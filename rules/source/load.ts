/**
 * Reads a YAML file into data and the means to name file:line:col for any part of it: the fast
 * path (fast-yaml.ts) when it takes the file, with a `yaml` document parsed when a position needs
 * it (of the rule or top-level entry holding it, when that can be read alone).
 */
import { readFileSync, statSync } from 'node:fs'
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml'
import { itemLine, lineStart, readYamlFast, type FastRead, type TopKey } from './fast-yaml.js'
import type { ProblemCode, RuleProblem, Severity } from '../check/problems.js'

/** A parsed YAML file with the means to turn a data path into a position. */
export interface SourceFile {
  file: string
  text: string
  /** The `yaml` document, with every node's position (parsed when first needed, for a file read by the fast path). */
  readonly doc: Document.Parsed
  lineCounter: LineCounter
  /** The plain data (`doc.toJS()`). */
  data: unknown
  /** Where each top-level `rules:` item starts, when the fast path read the file: no document needed for a rule's position. */
  ruleOffsets?: readonly number[]
  /** The document holding the node at `path`: the whole file's, or one part of it read alone. */
  locate: (path: DataPath) => Located
}

/** A document that holds a node, the file offset its own offsets start from, and the node's path in it. */
export interface Located {
  doc: Document.Parsed
  base: number
  path: DataPath
  /** The shortest prefix of `path` that names a node of the file (offsetOf looks no higher). */
  floor: number
}

const YAML_OPTIONS = { prettyErrors: false, uniqueKeys: true } as const

/**
 * A file the fast path read (rules/source/fast-yaml.ts). Problems and most positions need a `yaml`
 * document. For a file laid out in blocks, the first few are read from the one rule or top-level
 * entry they are in, alone (a rule of a 10,000-rule file in well under a millisecond, where the
 * whole file takes seconds); after that, or for any other layout, the whole file is parsed once.
 */
class FastSource implements SourceFile {
  readonly lineCounter = new LineCounter()
  private parsed: Document.Parsed | undefined
  /** Parts read alone, by their start offset. */
  private readonly parts = new Map<number, Document.Parsed | undefined>()

  constructor (readonly file: string, readonly text: string, readonly data: unknown, readonly ruleOffsets: number[], readonly topKeys: TopKey[]) {
    // Line starts as yaml's parser records them: offset 0 and each offset after a line feed.
    this.lineCounter.addNewLine(0)
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.lineCounter.addNewLine(i + 1)
  }

  get doc (): Document.Parsed {
    return (this.parsed ??= parseDocument(this.text, YAML_OPTIONS))
  }

  locate (path: DataPath): Located {
    return (this.parsed === undefined ? this.locatePart(path) : undefined) ?? { doc: this.doc, base: 0, path, floor: 0 }
  }

  /** The rule or top-level entry holding `path`, read alone; undefined when that cannot be promised to read as in the whole file. */
  private locatePart (path: DataPath): Located | undefined {
    if (this.topKeys.length === 0 || path.length === 0) return undefined
    const k = this.topKeys.findIndex((t) => t.key === path[0])
    if (k < 0) return undefined
    const entryEnd = k + 1 < this.topKeys.length ? lineStart(this.text, this.topKeys[k + 1].start) : this.text.length
    const rule = path[1]
    if (path[0] === 'rules' && typeof rule === 'number' && rule < this.ruleOffsets.length) {
      // One item of the block sequence, from its '-' line to the next item's (or the entry's end): a sequence of one.
      const start = itemLine(this.text, this.ruleOffsets[rule])
      const end = rule + 1 < this.ruleOffsets.length ? itemLine(this.text, this.ruleOffsets[rule + 1]) : entryEnd
      if (start === undefined || end === undefined) return undefined
      const doc = this.part(start, end)
      if (doc === undefined || !isSeq(doc.contents) || doc.contents.items.length !== 1) return undefined
      return { doc, base: start, path: [0, ...path.slice(2)], floor: 1 }
    }
    // One top-level entry, from its key's line to the next key's: a mapping of one. (A block mapping's
    // keys begin their lines; an explicit key's line begins with '?'.)
    const start = lineStart(this.text, this.topKeys[k].start)
    const doc = this.part(start, entryEnd)
    if (doc === undefined || !isMap(doc.contents) || doc.contents.items.length !== 1) return undefined
    const pair = doc.contents.items[0]
    if (!isScalar(pair.key) || pair.key.value !== path[0]) return undefined
    return { doc, base: start, path, floor: 1 }
  }

  /** The text from start to end parsed alone; undefined if it has errors, or once too many parts were read (the whole document is then cheaper). */
  private part (start: number, end: number): Document.Parsed | undefined {
    if (this.parts.has(start)) return this.parts.get(start)
    if (this.parts.size >= MAX_PARTS) return undefined
    const doc = parseDocument(this.text.slice(start, end), YAML_OPTIONS)
    const usable = doc.errors.length === 0 && doc.warnings.length === 0 ? doc : undefined
    this.parts.set(start, usable)
    return usable
  }
}

/** Parts of a fast-read file parsed alone before the whole document is parsed instead. */
const MAX_PARTS = 64

/** Where a rule, output or sink was written, for trace output and messages. */
export interface SourcePosition {
  file: string
  line: number
  col: number
}

/** A path into the data: keys and array indexes, as ajv and the compiler produce them. */
export type DataPath = ReadonlyArray<string | number>

/** Parses YAML text; syntax errors come back as problems with positions. */
export function parseSource (file: string, text: string): { ok: true, source: SourceFile } | { ok: false, problems: RuleProblem[] } {
  const fast = readYamlFast(text)
  if (fast !== undefined) return { ok: true, source: new FastSource(file, text, fast.data, fast.ruleOffsets, fast.topKeys) }
  return parseWithYaml(file, text)
}

/**
 * A file read elsewhere (the reloader's parse worker, rules/source/parse-worker.ts) from its data: with the
 * fast path's offsets when it took the file, otherwise with the `yaml` document parsed again here
 * when a position is first needed (only a problem or a trace needs one).
 */
export function sourceFromRead (file: string, text: string, read: FastRead | { data: unknown }): SourceFile {
  return 'ruleOffsets' in read ? new FastSource(file, text, read.data, read.ruleOffsets, read.topKeys) : new LateYamlSource(file, text, read.data)
}

/** A file the `yaml` library read elsewhere: its document (and its line counter) parsed when first needed. */
class LateYamlSource implements SourceFile {
  private parsed: { doc: Document.Parsed, lineCounter: LineCounter } | undefined

  constructor (readonly file: string, readonly text: string, readonly data: unknown) {}

  get doc (): Document.Parsed { return this.parse().doc }
  get lineCounter (): LineCounter { return this.parse().lineCounter }

  locate (path: DataPath): Located {
    return { doc: this.doc, base: 0, path, floor: 0 }
  }

  private parse (): { doc: Document.Parsed, lineCounter: LineCounter } {
    if (this.parsed === undefined) {
      const lineCounter = new LineCounter()
      this.parsed = { doc: parseDocument(this.text, { ...YAML_OPTIONS, lineCounter }), lineCounter }
    }
    return this.parsed
  }
}

/** How a source was read, for sending it to another thread: its data and, from the fast path, its offsets. */
export function readOf (source: SourceFile): FastRead | { data: unknown } {
  return source instanceof FastSource ? { data: source.data, ruleOffsets: source.ruleOffsets, topKeys: source.topKeys } : { data: source.data }
}

/** Parses YAML text with the `yaml` library alone: what parseSource does with anything the fast path declines. */
export function parseWithYaml (file: string, text: string): { ok: true, source: SourceFile } | { ok: false, problems: RuleProblem[] } {
  const lineCounter = new LineCounter()
  const lines = text.split(/\r?\n/)
  let doc: Document.Parsed
  try {
    doc = parseDocument(text, { ...YAML_OPTIONS, lineCounter })
  } catch (err) {
    return { ok: false, problems: [{ code: 'YAML_SYNTAX', severity: 'error', message: unreadable(err as Error), file, line: 1, col: 1, excerpt: lines[0] }] }
  }
  const at = (offset: number): { line: number, col: number } => lineCounter.linePos(offset)
  if (doc.errors.length > 0) {
    const errorLines = new Set(doc.errors.map((e) => at(e.pos[0]).line))
    const { hints, repaired } = quoteFlowTemplates(lines, errorLines)
    const problems: RuleProblem[] = hints.map((h) => ({ code: 'YAML_SYNTAX', severity: 'error', message: `the template '${h.text}' must be quoted inside [ … ] or { … }, where YAML reads '{' as the start of a mapping: write "${h.text}"`, file, line: h.line, col: h.col, excerpt: lines[h.line - 1] }))
    // What is still wrong once the templates are quoted (their own errors, and what they broke
    // after them, are the hints above).
    const hinted = new Set(hints.map((h) => h.line))
    const repairedCounter = new LineCounter()
    const rest = hints.length > 0 ? parseDocument(repaired, { ...YAML_OPTIONS, lineCounter: repairedCounter }).errors : doc.errors
    for (const e of rest) {
      const { line, col } = hints.length > 0 ? repairedCounter.linePos(e.pos[0]) : at(e.pos[0])
      if (hinted.has(line)) continue
      problems.push({ code: 'YAML_SYNTAX', severity: 'error', message: /call stack/i.test(e.message) ? TOO_DEEP : e.message, file, line, col, excerpt: lines[line - 1] })
    }
    return { ok: false, problems }
  }
  let data: unknown
  try {
    // maxAliasCount guards against alias bombs ("billion laughs"): expansion past it throws.
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    return {
      ok: false,
      problems: [{ code: 'YAML_SYNTAX', severity: 'error', message: unreadable(err as Error), file, line: 1, col: 1, excerpt: lines[0] }]
    }
  }
  return { ok: true, source: { file, text, doc, lineCounter, data, locate: (path) => ({ doc, base: 0, path, floor: 0 }) } }
}

/**
 * Unquoted templates (`alerts/{room}`) inside flow collections (`to: [ { mqtt: … } ]`): in block
 * style the same text is a plain string, in flow style its braces start a mapping, and the `yaml`
 * library reports a cascade of errors (hundreds, for a few rules) none of which says to quote it.
 * Every such template on a line with an error is quoted: each comes back with its line and column
 * in the file, and the text with all of them quoted.
 */
function quoteFlowTemplates (lines: readonly string[], errorLines: ReadonlySet<number>): { hints: Array<{ line: number, col: number, text: string }>, repaired: string } {
  const hints: Array<{ line: number, col: number, text: string }> = []
  const repaired = lines.map((original, i) => {
    if (!errorLines.has(i + 1)) return original
    let current = original
    // Each pass quotes one; a quoted template is blanked out for the next (bounded by the line's length).
    for (let template = unquotedFlowTemplate(current); template !== undefined; template = unquotedFlowTemplate(current)) {
      // Columns as in the file: quotes added earlier on this line moved it by two each.
      hints.push({ line: i + 1, col: template.col - 2 * hints.filter((h) => h.line === i + 1).length, text: template.text })
      current = `${current.slice(0, template.col - 1)}"${template.text}"${current.slice(template.col - 1 + template.text.length)}`
    }
    return current
  })
  return { hints, repaired: repaired.join('\n') }
}

/** The first unquoted template on a line that opens a flow collection before it, with its 1-based column. */
function unquotedFlowTemplate (line: string): { text: string, col: number } | undefined {
  // Quoted strings are blanked out: a template inside one is fine.
  const bare = line.replace(/"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'/g, (q) => ' '.repeat(q.length))
  const brace = /[^\s'"[\]{},:]\{[A-Za-z_#][\w.-]*\}/.exec(bare)
  if (brace === null || !/[[{]/.test(bare.slice(0, brace.index))) return undefined
  let start = brace.index
  while (start > 0 && !/[\s'"[\]{},]/.test(bare[start - 1])) start--
  const text = /^[^\s'"[\]{},]*(?:\{[A-Za-z_#][\w.-]*\}[^\s'"[\]{},]*)+/.exec(bare.slice(start))?.[0]
  return text === undefined ? undefined : { text, col: start + 1 }
}

/** A parser failure in words: a stack overflow means nesting deeper than the YAML reader can follow. */
function unreadable (err: Error): string {
  return err instanceof RangeError ? TOO_DEEP : err.message
}

const TOO_DEEP = 'the YAML nests too deeply to read (expressions may nest at most 200 levels)'

/** Rules and config files larger than this are refused before they are read. */
export const MAX_SOURCE_BYTES = 10 * 1024 * 1024

/** Reads and parses a file; an unreadable file is a problem, not an exception. */
export function loadSource (file: string): { ok: true, source: SourceFile } | { ok: false, problems: RuleProblem[] } {
  const read = readSourceText(file)
  return read.ok ? parseSource(file, read.text) : read
}

/** Reads a rules or config file's text, refusing one over MAX_SOURCE_BYTES before reading it. */
export function readSourceText (file: string): { ok: true, text: string } | { ok: false, problems: RuleProblem[] } {
  try {
    const size = statSync(file).size
    if (size > MAX_SOURCE_BYTES) {
      return { ok: false, problems: [{ code: 'FILE_TOO_LARGE', severity: 'error', message: `the file is ${(size / 1024 / 1024).toFixed(1)} MB; the limit is ${MAX_SOURCE_BYTES / 1024 / 1024} MB (split it into a directory of files)`, file, line: 1, col: 1 }] }
    }
    return { ok: true, text: readFileSync(file, 'utf8') }
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    return { ok: false, problems: [{ code: 'FILE_UNREADABLE', severity: 'error', message: `cannot read rules file: ${reason}`, file, line: 1, col: 1 }] }
  }
}

/**
 * Builds a problem at the node a data path names. When the node is absent (a missing key),
 * the nearest existing ancestor is used. With `atKey`, points at the key of the last segment.
 */
export function problemAt (
  source: SourceFile, path: DataPath, code: ProblemCode, message: string,
  options: { severity?: Severity, atKey?: boolean, offset?: number } = {}
): RuleProblem {
  const { line, col } = positionOf(source, path, options)
  const excerpt = source.text.split(/\r?\n/)[line - 1]
  return { code, severity: options.severity ?? 'error', message, file: source.file, line, col, excerpt }
}

/**
 * The position of a node, found when first read: a compiled rule keeps one for trace output and
 * runtime errors, which most rules never have, and finding it walks the document.
 */
export function lazyPositionOf (source: SourceFile, path: DataPath, options: { atKey?: boolean } = {}): SourcePosition {
  return new LazyPosition(source, path, options.atKey === true)
}

class LazyPosition {
  private found: { line: number, col: number } | undefined

  constructor (private readonly source: SourceFile, private readonly path: DataPath, private readonly atKey: boolean) {}

  get file (): string { return this.source.file }
  get line (): number { return this.find().line }
  get col (): number { return this.find().col }

  private find (): { line: number, col: number } {
    return (this.found ??= positionOf(this.source, this.path, { atKey: this.atKey }))
  }
}

/** file:line:col of the node a data path names (or its key, with `atKey`; or an explicit offset). */
export function positionOf (source: SourceFile, path: DataPath, options: { atKey?: boolean, offset?: number } = {}): { file: string, line: number, col: number } {
  const ruleOffset = path.length === 2 && path[0] === 'rules' && options.atKey !== true && typeof path[1] === 'number' ? source.ruleOffsets?.[path[1]] : undefined
  const { line, col } = source.lineCounter.linePos(options.offset ?? ruleOffset ?? offsetOf(source, path, options.atKey === true))
  return { file: source.file, line, col }
}

/** The source offset where the value at `path` starts (or its key, with `atKey`); a missing node gives its nearest ancestor's. */
export function offsetOf (source: SourceFile, path: DataPath, atKey = false): number {
  return offsetIn(source.locate(path), atKey) ?? offsetIn({ doc: source.doc, base: 0, path, floor: 0 }, atKey) ?? 0
}

function offsetIn ({ doc, base, path, floor }: Located, atKey: boolean): number | undefined {
  for (let n = path.length; n >= floor; n--) {
    const prefix = path.slice(0, n)
    if (atKey && n === path.length && n > 0) {
      const pair = findPair(doc, prefix)
      if (pair !== undefined && isScalar(pair.key) && pair.key.range) return base + pair.key.range[0]
    }
    const node = prefix.length === 0 ? doc.contents : doc.getIn(prefix, true)
    if (isNodeWithRange(node)) return base + node.range[0]
  }
  return undefined
}

/** The start offset of a scalar at `path` plus `inner` characters, for pointing inside a string. */
export function scalarOffset (source: SourceFile, path: DataPath, inner: number): number {
  const { doc, base, path: inDoc } = source.locate(path)
  const node = doc.getIn(inDoc, true)
  if (!isScalar(node) || !node.range) return offsetOf(source, path)
  const start = base + node.range[0]
  // Plain scalars start at their first character; quoted ones one later. Block scalars are left at the start.
  const first = source.text[start]
  const quoted = first === '"' || first === "'"
  return node.type === 'PLAIN' || quoted ? start + (quoted ? 1 : 0) + inner : start
}

function findPair (doc: Document.Parsed, path: DataPath): Pair | undefined {
  const parentPath = path.slice(0, -1)
  const key = path[path.length - 1]
  const parent = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true)
  if (!isMap(parent)) return undefined
  for (const item of parent.items) {
    if (isPair(item) && isScalar(item.key) && item.key.value === key) return item
  }
  return undefined
}

function isNodeWithRange (node: unknown): node is Node & { range: [number, number, number] } {
  return typeof node === 'object' && node !== null && 'range' in node && Array.isArray((node as Node).range)
}
