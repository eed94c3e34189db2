/**
 * The records of the write-ahead log, as bytes: a message a client published (its id, topic,
 * payload, QoS, retain flag, client id and arrival time) and a settlement (ids whose outputs are
 * all delivered or counted). Each record is framed by its body's length and CRC-32, so a record
 * cut short by a crash, or bytes that were never a record, are told from a good one.
 */
import { crc32 } from 'node:zlib'

/** A message as the log keeps it. */
export interface LoggedMessage {
  topic: string
  payload: Buffer
  qos: 1 | 2
  retain: boolean
  clientId: string | null
  /** When the broker took it, ms since the epoch (kept, so a replayed message keeps its time). */
  receivedAt: number
}

export type WalRecord =
  | { kind: 'message', id: number, message: LoggedMessage }
  | { kind: 'settled', ids: number[] }

/** Length (u32) and CRC-32 (u32) of the body, before it. */
export const FRAME_BYTES = 8
const MESSAGE = 1
const SETTLED = 2
/** Ids are written in 6 bytes: 2^48 messages, centuries at a million a second. */
const ID_BYTES = 6
const NO_CLIENT = 0xffff

export function encodeMessage (id: number, m: LoggedMessage): Buffer {
  const topic = Buffer.from(m.topic)
  const client = m.clientId === null ? undefined : Buffer.from(m.clientId)
  const bodyBytes = 1 + ID_BYTES + 1 + 1 + 8 + 2 + topic.length + 2 + (client?.length ?? 0) + 4 + m.payload.length
  const b = Buffer.allocUnsafe(FRAME_BYTES + bodyBytes)
  let at = FRAME_BYTES
  at = b.writeUInt8(MESSAGE, at)
  at = b.writeUIntLE(id, at, ID_BYTES)
  at = b.writeUInt8(m.qos, at)
  at = b.writeUInt8(m.retain ? 1 : 0, at)
  at = b.writeDoubleLE(m.receivedAt, at)
  at = b.writeUInt16LE(topic.length, at)
  at += topic.copy(b, at)
  at = b.writeUInt16LE(client === undefined ? NO_CLIENT : client.length, at)
  if (client !== undefined) at += client.copy(b, at)
  at = b.writeUInt32LE(m.payload.length, at)
  m.payload.copy(b, at)
  return frame(b)
}

export function encodeSettled (ids: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(FRAME_BYTES + 1 + 4 + ids.length * ID_BYTES)
  let at = FRAME_BYTES
  at = b.writeUInt8(SETTLED, at)
  at = b.writeUInt32LE(ids.length, at)
  for (const id of ids) at = b.writeUIntLE(id, at, ID_BYTES)
  return frame(b)
}

function frame (b: Buffer): Buffer {
  b.writeUInt32LE(b.length - FRAME_BYTES, 0)
  b.writeUInt32LE(crc32(b.subarray(FRAME_BYTES)), 4)
  return b
}

/**
 * The records of a segment's bytes, in order, up to the first that is cut short or fails its
 * checksum: `end` is where the good records end, and `torn` says whether anything follows them.
 */
export function decodeRecords (bytes: Buffer): { records: WalRecord[], end: number, torn: boolean } {
  const records: WalRecord[] = []
  let at = 0
  while (at + FRAME_BYTES <= bytes.length) {
    const length = bytes.readUInt32LE(at)
    const body = bytes.subarray(at + FRAME_BYTES, at + FRAME_BYTES + length)
    if (length === 0 || body.length < length || crc32(body) !== bytes.readUInt32LE(at + 4)) break
    const record = decodeBody(body)
    if (record === undefined) break
    records.push(record)
    at += FRAME_BYTES + length
  }
  return { records, end: at, torn: at < bytes.length }
}

/** A body whose checksum is good but whose contents do not parse is treated as torn too. */
function decodeBody (b: Buffer): WalRecord | undefined {
  try {
    let at = 0
    const kind = b.readUInt8(at++)
    if (kind === SETTLED) {
      const count = b.readUInt32LE(at); at += 4
      if (b.length !== at + count * ID_BYTES) return undefined
      const ids: number[] = []
      for (let i = 0; i < count; i++, at += ID_BYTES) ids.push(b.readUIntLE(at, ID_BYTES))
      return { kind: 'settled', ids }
    }
    if (kind !== MESSAGE) return undefined
    const id = b.readUIntLE(at, ID_BYTES); at += ID_BYTES
    const qos = b.readUInt8(at++)
    const retain = b.readUInt8(at++) === 1
    const receivedAt = b.readDoubleLE(at); at += 8
    const topicLength = b.readUInt16LE(at); at += 2
    const topic = b.toString('utf8', at, at + topicLength); at += topicLength
    const clientLength = b.readUInt16LE(at); at += 2
    let clientId: string | null = null
    if (clientLength !== NO_CLIENT) { clientId = b.toString('utf8', at, at + clientLength); at += clientLength }
    const payloadLength = b.readUInt32LE(at); at += 4
    if (b.length !== at + payloadLength || (qos !== 1 && qos !== 2)) return undefined
    // A copy: the segment's buffer is let go once it is read.
    const payload = Buffer.from(b.subarray(at, at + payloadLength))
    return { kind: 'message', id, message: { topic, payload, qos, retain, clientId, receivedAt } }
  } catch {
    return undefined
  }
}
