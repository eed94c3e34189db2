/**
 * Reads a YAML file's data fast: js-yaml's event parser, about 8× the `yaml` library on large
 * files, with the offsets of the top-level `rules:` items and keys (so that load.ts can read the one
 * holding a position alone). It declines anything it might not read
 * exactly as `yaml` does (directives, tags, aliases, null or collection keys, lone CR line breaks,
 * nesting past js-yaml's depth limit, any error), and load.ts then reads the file with `yaml`,
 * which also reports the positions of problems.
 */
import { COLLECTION_STYLE, constructFromEvents, CORE_SCHEMA, EVENT_ID, getScalarValue, parseEvents, SCALAR_STYLE, type Event } from 'js-yaml'

export interface FastRead {
  data: unknown
  /** Where each item of the top-level `rules:` sequence starts (an offset into the text). */
  ruleOffsets: number[]
  /**
   * Each top-level key and the offset where it starts, when the file is laid out in blocks (a block
   * mapping at the top, `rules:` a block sequence), so that one entry or one rule can be read alone.
   * Empty otherwise.
   */
  topKeys: TopKey[]
}

export interface TopKey {
  key: string
  start: number
}

/** Plain scalars `yaml` reads as null: as keys, `yaml` makes them '' where js-yaml makes them 'null'. */
const NULL_PLAIN = /^(?:~|[Nn]ull|NULL)?$/

interface Frame {
  mapping: boolean
  /** In a mapping: the next node is a key. */
  expectKey: boolean
  /** This is the sequence whose item offsets are noted (`rules:`, or the root). */
  rules: boolean
}

/** Reads a whole rules file. */
export function readYamlFast (text: string): FastRead | undefined {
  if (/\r(?!\n)/.test(text)) return undefined
  let events: Event[]
  try {
    events = parseEvents(text, {})
  } catch {
    return undefined
  }
  const layout = scan(text, events)
  if (layout === undefined) return undefined
  try {
    // maxAliases 0: an alias is declined (yaml's own alias limits then apply).
    const documents = constructFromEvents(events, { source: text, schema: CORE_SCHEMA, maxAliases: 0 })
    return documents.length === 1 ? { data: documents[0], ...layout } : undefined
  } catch {
    return undefined
  }
}

/** Walks the events once: declines what the fast path does not take, and notes where rules and top-level keys start. */
function scan (text: string, events: Event[]): Omit<FastRead, 'data'> | undefined {
  const ruleOffsets: number[] = []
  let topKeys: TopKey[] = []
  let blocks = true
  const stack: Frame[] = []
  let documents = 0
  let topKey: string | undefined
  for (const event of events) {
    if (event.type === EVENT_ID.DOCUMENT) {
      if (++documents > 1 || event.directives.length > 0) return undefined
      continue
    }
    if (event.type === EVENT_ID.POP) { stack.pop(); continue }
    if (event.type === EVENT_ID.ALIAS || event.tagStart !== -1) return undefined
    // A node begins: is it a key, and is it an item of `rules:`?
    const parent = stack[stack.length - 1]
    const isKey = parent?.mapping === true && parent.expectKey
    if (parent?.mapping === true) parent.expectKey = !parent.expectKey
    const start = event.type === EVENT_ID.SCALAR ? event.valueStart : event.start
    if (parent?.rules === true) {
      // An empty item has no place in the text (-1); yaml puts it after the '-'.
      if (start < 0) return undefined
      ruleOffsets.push(start)
    }
    if (event.type === EVENT_ID.SCALAR) {
      if (!isKey) continue
      const value = getScalarValue(text, event)
      if (event.style === SCALAR_STYLE.PLAIN && NULL_PLAIN.test(value)) return undefined
      if (stack.length === 1) {
        topKey = value
        topKeys.push({ key: value, start })
      }
      continue
    }
    if (isKey) return undefined
    const rules = stack.length === 1 && topKey === 'rules' && event.type === EVENT_ID.SEQUENCE
    if ((stack.length === 0 || rules) && event.style !== COLLECTION_STYLE.BLOCK) blocks = false
    if (stack.length === 0 && event.type !== EVENT_ID.MAPPING) blocks = false
    stack.push({ mapping: event.type === EVENT_ID.MAPPING, expectKey: true, rules })
  }
  if (!blocks) topKeys = []
  return documents === 1 ? { ruleOffsets, topKeys } : undefined
}

/** The offset where the line holding `offset` starts. */
export function lineStart (text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1
}

/**
 * The start of the line holding the '-' of the block sequence item that starts at `itemStart`: the
 * same line ("  - name: a") or one above it, past blank and comment lines. Undefined for anything else.
 */
export function itemLine (text: string, itemStart: number): number | undefined {
  let start = lineStart(text, itemStart)
  if (/^[ ]*-[ ]+$/.test(text.slice(start, itemStart))) return start
  if (!/^[ ]*$/.test(text.slice(start, itemStart))) return undefined
  while (start > 0) {
    start = lineStart(text, start - 1)
    const end = text.indexOf('\n', start)
    const line = text.slice(start, end < 0 ? undefined : end).replace(/\r$/, '')
    if (/^[ ]*-(?:[ ]+#.*)?[ ]*$/.test(line)) return start
    if (!/^[ ]*(?:#.*)?$/.test(line)) return undefined
  }
  return undefined
}
