/** Topic filters with named captures ('sensors/+room/#rest') and the MQTT topic and filter rules they obey. */

/** One named capture: the level it starts at, and whether it takes the rest of the topic ('#name'). */
export interface Capture {
  name: string
  level: number
  multi: boolean
}

/** A rule's `from`, split into the plain MQTT filter the router matches and the captures. */
export interface Pattern {
  /** The rule author's text, e.g. 'sensors/+room/temperature'. */
  source: string
  /** The plain MQTT filter, e.g. 'sensors/+/temperature'. */
  filter: string
  levels: string[]
  captures: Capture[]
}

/** A refusal with the character offset it points at, so callers can turn it into file:line:col. */
export interface PatternError {
  message: string
  index: number
}

const CAPTURE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
/** Names that would reach an object's prototype when used as a key. */
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype'])
/** [MQTT-1.5.3] strings on the wire are at most 65,535 bytes. */
const MAX_TOPIC_BYTES = 65535

/**
 * Parses a filter with named captures. '+name' captures one level, '#name' the rest;
 * plain '+' and '#' capture nothing. Anything else holding '+' or '#' is refused.
 */
export function parsePattern (source: string): { ok: true, pattern: Pattern } | { ok: false, error: PatternError } {
  const basic = checkCommon(source, 'filter')
  if (basic !== undefined) return { ok: false, error: basic }
  if (source.startsWith('$share/')) {
    return { ok: false, error: { index: 0, message: "'$share/…' is a subscription option, not a topic filter; write the filter alone" } }
  }
  const raw = source.split('/')
  const levels: string[] = []
  const captures: Capture[] = []
  let offset = 0
  for (let i = 0; i < raw.length; i++) {
    const level = raw[i]
    const sigil = level[0]
    if (sigil === '+' || sigil === '#') {
      const name = level.slice(1)
      if (name !== '' && !CAPTURE_NAME.test(name)) {
        return { ok: false, error: { index: offset, message: `'${sigil}' must occupy a whole level; a named capture is '${sigil}name' with letters, digits and '_' (found '${level}')` } }
      }
      // [MQTT-4.7.1-2] '#' must be the last level of a filter.
      if (sigil === '#' && i !== raw.length - 1) {
        return { ok: false, error: { index: offset, message: `'${level}' must be the last level of a filter` } }
      }
      if (RESERVED_NAMES.has(name)) {
        return { ok: false, error: { index: offset, message: `'${name}' cannot be a capture name` } }
      }
      if (name !== '') {
        if (captures.some((c) => c.name === name)) {
          return { ok: false, error: { index: offset, message: `capture '${name}' is named twice` } }
        }
        captures.push({ name, level: i, multi: sigil === '#' })
      }
      levels.push(sigil)
    } else {
      const bad = findWildcard(level)
      if (bad >= 0) {
        // [MQTT-4.7.1-3] '+' and '#' must occupy a whole level.
        return { ok: false, error: { index: offset + bad, message: `'${level[bad]}' must occupy a whole level (found '${level}')` } }
      }
      levels.push(level)
    }
    offset += level.length + 1
  }
  return { ok: true, pattern: { source, filter: levels.join('/'), levels, captures } }
}

/** Checks a plain MQTT filter (no named captures), as a broker checks a SUBSCRIBE. */
export function validateFilter (filter: string): PatternError | undefined {
  const basic = checkCommon(filter, 'filter')
  if (basic !== undefined) return basic
  let offset = 0
  if (filter.startsWith('$share/')) {
    // MQTT 5 4.8.2: '$share/{ShareName}/{filter}', ShareName non-empty and without wildcards.
    const slash = filter.indexOf('/', 7)
    const name = slash < 0 ? '' : filter.slice(7, slash)
    if (slash < 0 || name === '' || findWildcard(name) >= 0 || slash === filter.length - 1) {
      return { index: 0, message: "a shared subscription is '$share/<name>/<filter>' with a name free of '+' and '#'" }
    }
    offset = slash + 1
    filter = filter.slice(offset)
  }
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]
    if (level === '#' && i !== levels.length - 1) return { index: offset, message: "'#' must be the last level of a filter" }
    if (level !== '+' && level !== '#') {
      const bad = findWildcard(level)
      if (bad >= 0) return { index: offset + bad, message: `'${level[bad]}' must occupy a whole level (found '${level}')` }
    }
    offset += level.length + 1
  }
  return undefined
}

/** Checks a topic name a message may be published to: non-empty, no wildcards, no NUL. */
export function validateTopicName (topic: string): PatternError | undefined {
  const basic = checkCommon(topic, 'topic')
  if (basic !== undefined) return basic
  const bad = findWildcard(topic)
  // [MQTT-3.3.2-2] a topic name in a PUBLISH must not contain wildcards.
  if (bad >= 0) return { index: bad, message: `a topic name must not contain '${topic[bad]}'` }
  return undefined
}

function checkCommon (text: string, what: 'filter' | 'topic'): PatternError | undefined {
  // [MQTT-4.7.3-1] topic names and filters are at least one character long.
  if (text.length === 0) return { index: 0, message: `a ${what} must not be empty` }
  // [MQTT-4.7.3-2] U+0000 must not appear.
  const nul = text.indexOf('\u0000')
  if (nul >= 0) return { index: nul, message: `a ${what} must not contain NUL (U+0000)` }
  if (Buffer.byteLength(text, 'utf8') > MAX_TOPIC_BYTES) return { index: 0, message: `a ${what} must be at most ${MAX_TOPIC_BYTES} bytes` }
  return undefined
}

function findWildcard (text: string): number {
  const plus = text.indexOf('+')
  const hash = text.indexOf('#')
  if (plus < 0) return hash
  if (hash < 0) return plus
  return Math.min(plus, hash)
}

/** MQTT matching of a topic name against filter levels; a leading wildcard never matches a '$' topic. */
export function topicMatches (filter: string[], topic: string): boolean {
  const levels = topic.split('/')
  if ((filter[0] === '+' || filter[0] === '#') && topic.startsWith('$')) return false
  for (let i = 0; i < filter.length; i++) {
    if (filter[i] === '#') return true
    if (i >= levels.length) return false
    if (filter[i] !== '+' && filter[i] !== levels[i]) return false
  }
  return filter.length === levels.length
}
