/** Equality of YAML data as JSON cannot tell it: -0, NaN and ±Infinity, and the order of keys. */
import assert from 'node:assert/strict'

export function assertSameData (a: unknown, b: unknown, message?: string): void {
  assert.deepStrictEqual(a, b, message)
  assert.equal(JSON.stringify(a, exact), JSON.stringify(b, exact), message)
}

function exact (_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value)
  if (Object.is(value, -0)) return '-0'
  return value
}
