/**
 * Decodes only the top-level fields of a JSON payload that the rules read, straight from its bytes.
 * Every byte is still checked, so a payload is taken exactly when JSON.parse would take it, but a
 * field no rule reads is skipped, never built: a sensor's 2 KB report read for one field costs a
 * scan, not a parse. A payload that is not a JSON object, is not JSON at all, or nests too deeply
 * is handed to decodePayload, so every outcome (and every error a rule reports) is the full decode's.
 */
import { decodePayload, type DecodedPayload } from './decode.js'

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const LBRACE = 0x7b
const RBRACE = 0x7d
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const ZERO = 0x30
const NINE = 0x39

/** More fields than this and a scan compares each key too often to beat JSON.parse: the rule set decodes whole. */
export const MAX_PICKED_FIELDS = 64

/** 10^0 … 10^22, each exact as a double: a mantissa below 2^53 divided by one is correctly rounded. */
const POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]

/** What a scan that gives up returns: no JSON value is `undefined`, so it cannot be taken for one; the payload then goes to decodePayload. */
const DECLINE = undefined

export class PayloadPicker {
  private readonly names: string[]
  private readonly byName = new Map<string, number>()
  /** Field indexes by the byte length of their names: a key is compared only with names of its length. */
  private readonly byLength: number[][] = []
  private readonly bytes: Uint8Array[]
  /** Container kinds while a nested value is skipped, one per level. */
  private readonly stack: Uint8Array
  // What the last string scan saw, and where the last value read ended: fields, not a result object per value.
  private escaped = false
  private nonAscii = false
  private end = 0

  /**
   * A picker for these fields, or undefined when picking cannot pay or cannot be exact: no fields,
   * more than MAX_PICKED_FIELDS, or '__proto__' (JSON.parse makes it an own field).
   */
  static for (fields: readonly string[], maxDepth: number): PayloadPicker | undefined {
    if (fields.length === 0 || fields.length > MAX_PICKED_FIELDS || fields.includes('__proto__')) return undefined
    return new PayloadPicker(fields, maxDepth)
  }

  /** `fields`: the top-level names the rules read ('__proto__' is refused: JSON.parse makes it an own field). */
  constructor (fields: Iterable<string>, private readonly maxDepth: number) {
    this.names = [...new Set(fields)]
    if (this.names.includes('__proto__')) throw new Error("'__proto__' cannot be picked")
    this.bytes = this.names.map((name) => Buffer.from(name, 'utf8'))
    this.names.forEach((name, i) => {
      this.byName.set(name, i)
      const length = this.bytes[i].length
      while (this.byLength.length <= length) this.byLength.push([])
      this.byLength[length].push(i)
    })
    this.stack = new Uint8Array(maxDepth + 2)
  }

  /** The payload with only the picked fields when it is a JSON object, else exactly decodePayload's result. */
  decode (payload: Buffer): DecodedPayload {
    const value = this.pick(payload)
    return value === DECLINE ? decodePayload(payload, this.maxDepth) : { json: true, value }
  }

  private pick (b: Buffer): Record<string, unknown> | undefined {
    const n = b.length
    let i = skipSpace(b, 0)
    if (b[i] !== LBRACE) return DECLINE
    const out: Record<string, unknown> = {}
    i = skipSpace(b, i + 1)
    if (b[i] === RBRACE) return skipSpace(b, i + 1) === n ? out : DECLINE
    for (;;) {
      if (b[i] !== QUOTE) return DECLINE
      const keyEnd = this.skipString(b, i)
      if (keyEnd < 0) return DECLINE
      const field = this.fieldOf(b, i, keyEnd)
      i = skipSpace(b, keyEnd)
      if (b[i] !== COLON) return DECLINE
      i = skipSpace(b, i + 1)
      if (field < 0) {
        i = this.skipValue(b, i)
        if (i < 0) return DECLINE
      } else {
        const value = this.readValue(b, i)
        if (value === DECLINE) return DECLINE
        // A repeated key: the last one wins, as in JSON.parse.
        out[this.names[field]] = value
        i = this.end
      }
      i = skipSpace(b, i)
      if (b[i] === COMMA) { i = skipSpace(b, i + 1); continue }
      if (b[i] !== RBRACE) return DECLINE
      return skipSpace(b, i + 1) === n ? out : DECLINE
    }
  }

  /** The index of the field a key (its quotes at `start` and `end - 1`) names, or -1. */
  private fieldOf (b: Buffer, start: number, end: number): number {
    if (this.escaped) return this.byName.get(JSON.parse(b.toString('utf8', start, end)) as string) ?? -1
    // Bytes outside ASCII are compared as the text the full decode would make of them.
    if (this.nonAscii) return this.byName.get(b.toString('utf8', start + 1, end - 1)) ?? -1
    const length = end - start - 2
    const candidates = this.byLength[length]
    if (candidates === undefined) return -1
    for (let c = 0; c < candidates.length; c++) {
      const name = this.bytes[candidates[c]]
      let j = 0
      while (j < length && name[j] === b[start + 1 + j]) j++
      if (j === length) return candidates[c]
    }
    return -1
  }

  /** Reads a value whose first byte is at `i` and sets `end` after it; DECLINE if it is not JSON. */
  private readValue (b: Buffer, i: number): unknown {
    const c = b[i]
    if (c === QUOTE) {
      const end = this.skipString(b, i)
      if (end < 0) return DECLINE
      this.end = end
      if (this.escaped) return JSON.parse(b.toString('utf8', i, end))
      return this.nonAscii ? b.toString('utf8', i + 1, end - 1) : b.toString('latin1', i + 1, end - 1)
    }
    if (c === MINUS || (c >= ZERO && c <= NINE)) return this.readNumber(b, i)
    if (c === LBRACE || c === LBRACKET) {
      const end = this.skipContainer(b, i)
      if (end < 0) return DECLINE
      this.end = end
      return JSON.parse(b.toString('utf8', i, end))
    }
    const end = skipLiteral(b, i)
    if (end < 0) return DECLINE
    this.end = end
    return c === 0x74 ? true : c === 0x66 ? false : null
  }

  /** The index after the value at `i`, or -1 if it is not JSON (or nests deeper than the limit). */
  private skipValue (b: Buffer, i: number): number {
    const c = b[i]
    return c === LBRACE || c === LBRACKET ? this.skipContainer(b, i) : this.skipScalar(b, i)
  }

  /** The index after the string, number or literal at `i`, or -1. */
  private skipScalar (b: Buffer, i: number): number {
    const c = b[i]
    if (c === QUOTE) return this.skipString(b, i)
    if (c === MINUS || (c >= ZERO && c <= NINE)) return skipNumber(b, i)
    return skipLiteral(b, i)
  }

  /**
   * The index after the string whose opening quote is at `i`, or -1; notes whether it holds escapes
   * or bytes outside ASCII. Checks each escape and refuses raw control characters, as JSON.parse does.
   */
  private skipString (b: Buffer, i: number): number {
    const n = b.length
    let escaped = false
    let nonAscii = false
    let j = i + 1
    while (j < n) {
      const c = b[j]
      if (c === QUOTE) {
        this.escaped = escaped
        this.nonAscii = nonAscii
        return j + 1
      }
      if (c === BACKSLASH) {
        escaped = true
        const e = b[j + 1]
        if (e === 0x75) { // \uXXXX
          if (!isHex(b[j + 2]) || !isHex(b[j + 3]) || !isHex(b[j + 4]) || !isHex(b[j + 5])) return -1
          j += 6
          continue
        }
        if (e !== QUOTE && e !== BACKSLASH && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return -1
        j += 2
        continue
      }
      if (c < 0x20) return -1
      if (c >= 0x80) nonAscii = true
      j++
    }
    return -1
  }

  /**
   * The index after the object or array at `i` (a field's value, so at depth 2), or -1 if it is not
   * JSON or nests deeper than the limit (the full decode then reports which). Iterative: a deep
   * payload cannot exhaust the call stack.
   */
  private skipContainer (b: Buffer, i: number): number {
    const stack = this.stack
    // The top-level object is depth 1; stack[top] is at depth top + 2.
    if (this.maxDepth < 2) return -1
    let top = 0
    stack[0] = b[i]
    i = skipSpace(b, i + 1)
    let first = true
    for (;;) {
      const close = stack[top] === LBRACE ? RBRACE : RBRACKET
      if (b[i] === close) {
        i = skipSpace(b, i + 1)
        if (--top < 0) return i
        first = false
        continue
      }
      if (!first) {
        if (b[i] !== COMMA) return -1
        i = skipSpace(b, i + 1)
      }
      if (close === RBRACE) {
        if (b[i] !== QUOTE) return -1
        i = this.skipString(b, i)
        if (i < 0) return -1
        i = skipSpace(b, i)
        if (b[i] !== COLON) return -1
        i = skipSpace(b, i + 1)
      }
      const c = b[i]
      if (c === LBRACE || c === LBRACKET) {
        if (top + 3 > this.maxDepth) return -1
        stack[++top] = c
        i = skipSpace(b, i + 1)
        first = true
        continue
      }
      i = this.skipScalar(b, i)
      if (i < 0) return -1
      i = skipSpace(b, i)
      first = false
    }
  }

  /**
   * A number as JSON.parse reads it. Up to 15–16 digits without an exponent it is computed here
   * (an exact integer mantissa divided by an exact power of ten rounds correctly); otherwise V8
   * reads the digits.
   */
  private readNumber (b: Buffer, i: number): number | undefined {
    const start = i
    const negative = b[i] === MINUS
    if (negative) i++
    let mantissa = 0
    let fraction = 0
    let exponent = false
    if (b[i] === ZERO) {
      i++
    } else if (b[i] > ZERO && b[i] <= NINE) {
      while (b[i] >= ZERO && b[i] <= NINE) mantissa = mantissa * 10 + (b[i++] - ZERO)
    } else {
      return DECLINE
    }
    if (b[i] === DOT) {
      const from = ++i
      while (b[i] >= ZERO && b[i] <= NINE) mantissa = mantissa * 10 + (b[i++] - ZERO)
      if (i === from) return DECLINE
      fraction = i - from
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      exponent = true
      i++
      if (b[i] === PLUS || b[i] === MINUS) i++
      const from = i
      while (b[i] >= ZERO && b[i] <= NINE) i++
      if (i === from) return DECLINE
    }
    this.end = i
    if (!exponent && fraction <= 22 && mantissa <= Number.MAX_SAFE_INTEGER) {
      const magnitude = fraction === 0 ? mantissa : mantissa / POW10[fraction]
      return negative ? -magnitude : magnitude
    }
    return Number(b.toString('latin1', start, i))
  }
}

function skipSpace (b: Buffer, i: number): number {
  for (;;) {
    const c = b[i]
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i
    i++
  }
}

function isHex (c: number | undefined): boolean {
  if (c === undefined) return false
  const lower = c | 0x20
  return (c >= ZERO && c <= NINE) || (lower >= 0x61 && lower <= 0x66)
}

/** The index after a number at `i` in JSON's grammar, or -1. */
function skipNumber (b: Buffer, i: number): number {
  if (b[i] === MINUS) i++
  if (b[i] === ZERO) i++
  else if (b[i] > ZERO && b[i] <= NINE) while (b[i] >= ZERO && b[i] <= NINE) i++
  else return -1
  if (b[i] === DOT) {
    const from = ++i
    while (b[i] >= ZERO && b[i] <= NINE) i++
    if (i === from) return -1
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++
    if (b[i] === PLUS || b[i] === MINUS) i++
    const from = i
    while (b[i] >= ZERO && b[i] <= NINE) i++
    if (i === from) return -1
  }
  return i
}

const TRUE = Buffer.from('true')
const FALSE = Buffer.from('false')
const NULL = Buffer.from('null')

/** The index after `true`, `false` or `null` at `i`, or -1. */
function skipLiteral (b: Buffer, i: number): number {
  const c = b[i]
  const word = c === 0x74 ? TRUE : c === 0x66 ? FALSE : c === 0x6e ? NULL : undefined
  if (word === undefined) return -1
  for (let k = 1; k < word.length; k++) if (b[i + k] !== word[k]) return -1
  return i + word.length
}
