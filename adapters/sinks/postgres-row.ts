/**
 * The row a message writes to PostgreSQL: `time`, the rule's named captures (text), the payload's
 * top-level fields (a payload that is not an object: `value`), and `msg_id` for a logged message.
 * Pure, so `signalbox trace` and `test` show the very row the sink writes.
 */
import { describePayload } from '../../rules/model/message.js'

/** The columns a row always has (a payload field by one of these names is left out). */
export const TIME_COLUMN = 'time'
export const ID_COLUMN = 'msg_id'
/** PostgreSQL truncates longer identifiers; a field with a longer name cannot be a column. */
export const MAX_COLUMN_BYTES = 63

export type Row = Record<string, unknown>

export interface RowInput {
  payload: Buffer
  params?: Readonly<Record<string, string>>
  /** The output's `time:` value, if it has one. */
  time?: unknown
  /** When the message arrived (ms since the epoch). */
  receivedAt: number
  id?: string
}

/** The row, or why the message cannot make one. */
export function rowOf (input: RowInput): { row: Row } | { refused: string } {
  const time = timeOf(input.time, input.receivedAt)
  if (typeof time !== 'string') return time
  const row: Row = { [TIME_COLUMN]: time }
  let value: unknown
  try {
    value = JSON.parse(input.payload.toString('utf8'))
  } catch {
    value = describePayload(input.payload).payload
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [field, v] of Object.entries(value)) {
      if (field === TIME_COLUMN || field === ID_COLUMN || v === undefined) continue
      row[field] = v
    }
  } else {
    row.value = value
  }
  // Captures name the key the row belongs to: they win over a payload field of the same name.
  if (input.params !== undefined) for (const [name, v] of Object.entries(input.params)) row[name] = v
  if (input.id !== undefined) row[ID_COLUMN] = input.id
  return { row }
}

/** The row's time as ISO 8601: the `time:` value (epoch s or ms, or an ISO string), else the arrival. */
function timeOf (value: unknown, receivedAt: number): string | { refused: string } {
  if (value === undefined || value === null) return new Date(receivedAt).toISOString()
  let ms: number
  if (typeof value === 'number' && Number.isFinite(value)) {
    // Below 1e11: epoch seconds (up to the year 5138); above: milliseconds (from March 1973 on).
    ms = Math.abs(value) < 1e11 ? value * 1000 : value
  } else if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value)) {
    ms = Date.parse(value)
  } else {
    return { refused: `time ${JSON.stringify(value)} is not epoch seconds, milliseconds or an ISO 8601 string` }
  }
  const date = new Date(ms)
  if (Number.isNaN(date.getTime())) return { refused: `time ${JSON.stringify(value)} is not a valid time` }
  return date.toISOString()
}

/** The column type a value makes when a table is created or a column added. */
export function columnTypeOf (value: unknown): string | undefined {
  if (typeof value === 'number') return 'double precision'
  if (typeof value === 'string') return 'text'
  if (typeof value === 'boolean') return 'boolean'
  if (value !== null && typeof value === 'object') return 'jsonb'
  return undefined
}

/** An identifier, quoted: any field name is safe as a column name this way. */
export function quoteIdent (name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

/** A table name (`name` or `schema.name`, as the table template allows), quoted. */
export function quoteTable (table: string): string {
  return table.split('.').map(quoteIdent).join('.')
}
