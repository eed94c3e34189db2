/**
 * The reloader's parse thread (parse-off-thread.ts is its other end). It parses and validates one
 * file per request and answers in pieces the main thread asks for one at a time: a head (the
 * file's data without its rules, the fast path's offsets) and then its rules and problems, each
 * already serialized and grouped up to PIECE_BYTES, so that taking in a large file never holds the
 * main thread for longer than one piece takes to deserialize.
 */
import { constants, setPriority } from 'node:os'
import { serialize } from 'node:v8'
import { parentPort } from 'node:worker_threads'
import { readOf } from './load.js'
import { parseAndValidate } from './parse-file.js'
import type { ParseAnswer, ParseRequest } from './parse-off-thread.js'

/** About 3 ms of deserializing on the main thread (measured: about 45 µs per KB of rules). */
const PIECE_BYTES = 64 * 1024

let pieces: Uint8Array[][] = []
/** The rules schema files are checked against, sent with the first request (and whenever it changes). */
let schema: Record<string, unknown> | undefined

// On Linux a nice value is a thread's own: this one yields the cores to the broker's thread
// whenever both want one (on 2 cores, a reload otherwise competes with the traffic it must not slow).
try {
  setPriority(constants.priority.PRIORITY_LOW)
} catch {
  // Not permitted here: the parse runs at the broker's priority.
}

parentPort!.on('message', (request: ParseRequest) => {
  if (request.kind === 'more') {
    answer({ kind: 'piece', items: pieces.shift() ?? [] })
    return
  }
  if (request.schema !== undefined) schema = request.schema
  if (schema === undefined) throw new Error('parse worker: no rules schema was sent')
  const parsed = parseAndValidate(request.file, request.text, schema)
  if (!parsed.ok) {
    pieces = group(parsed.problems.map((item) => serialize(item)))
    answer({ kind: 'head', ok: false, problemCount: parsed.problems.length })
    return
  }
  const read = readOf(parsed.source)
  const data = read.data as { rules?: unknown } | null
  const rules = data !== null && typeof data === 'object' && Array.isArray(data.rules) ? data.rules : undefined
  pieces = group([...(rules ?? []), ...parsed.problems].map((item) => serialize(item)))
  // The rules follow as items; the head carries the rest of the data.
  const head = rules !== undefined ? { ...data, rules: [] } : data
  // The text goes back only when this thread read it.
  answer({ kind: 'head', ok: true, read: { ...read, data: head }, ruleCount: rules?.length ?? 0, problemCount: parsed.problems.length, text: request.text === undefined ? parsed.source.text : undefined })
})

function group (items: Uint8Array[]): Uint8Array[][] {
  const out: Uint8Array[][] = []
  let current: Uint8Array[] = []
  let bytes = 0
  for (const item of items) {
    if (current.length > 0 && bytes + item.byteLength > PIECE_BYTES) { out.push(current); current = []; bytes = 0 }
    current.push(item)
    bytes += item.byteLength
  }
  if (current.length > 0) out.push(current)
  return out
}

function answer (message: ParseAnswer): void {
  parentPort!.postMessage(message)
}
