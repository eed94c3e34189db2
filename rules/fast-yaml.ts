/**
 * Reads a YAML file's data fast: js-yaml's event parser, about 8× the `yaml` library on large
 * files, with the offsets of the top-level `rules:` items. It declines anything it might not read
 * exactly as `yaml` does (directives, tags, aliases, null or collection keys, lone CR line breaks,
 * nesting past js-yaml's depth limit, any error), and load.ts then reads the file with `yaml`,
 * which also reports the positions of problems.
 */
import { constructFromEvents, CORE_SCHEMA, EVENT_ID, getScalarValue, parseEvents, SCALAR_STYLE, type Event } from 'js-yaml'

export interface FastRead {
  data: unknown
  /** Where each item of the top-level `rules:` sequence starts (an offset into the text). */
  ruleOffsets: number[]
}

/** Plain scalars `yaml` reads as null: as keys, `yaml` makes them '' where js-yaml makes them 'null'. */
const NULL_PLAIN = /^(?:~|[Nn]ull|NULL)?$/

interface Frame {
  mapping: boolean
  /** In a mapping: the next node is a key. */
  expectKey: boolean
  /** This is the sequence under the top-level `rules:` key. */
  rules: boolean
}

export function readYamlFast (text: string): FastRead | undefined {
  if (/\r(?!\n)/.test(text)) return undefined
  let events: Event[]
  try {
    events = parseEvents(text, {})
  } catch {
    return undefined
  }
  const ruleOffsets = scan(text, events)
  if (ruleOffsets === undefined) return undefined
  try {
    // maxAliases 0: an alias is declined (yaml's own alias limits then apply).
    const documents = constructFromEvents(events, { source: text, schema: CORE_SCHEMA, maxAliases: 0 })
    return documents.length === 1 ? { data: documents[0], ruleOffsets } : undefined
  } catch {
    return undefined
  }
}

/** Walks the events once: declines what the fast path does not take, and notes where rules start. */
function scan (text: string, events: Event[]): number[] | undefined {
  const ruleOffsets: number[] = []
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
    if (parent?.rules === true) ruleOffsets.push(start)
    if (event.type === EVENT_ID.SCALAR) {
      if (!isKey) continue
      const value = getScalarValue(text, event)
      if (event.style === SCALAR_STYLE.PLAIN && NULL_PLAIN.test(value)) return undefined
      if (stack.length === 1) topKey = value
      continue
    }
    if (isKey) return undefined
    const rules = stack.length === 1 && topKey === 'rules' && event.type === EVENT_ID.SEQUENCE
    stack.push({ mapping: event.type === EVENT_ID.MAPPING, expectKey: true, rules })
  }
  return documents === 1 ? ruleOffsets : undefined
}
