/** Small helpers the benchmarks share: medians, the machine line, formatting. */
import { cpus } from 'node:os'

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

export function machine (): string {
  return `${cpus()[0]?.model.trim() ?? 'cpu'}, ${cpus().length} cores, node ${process.version}`
}

export function fmt (n: number, digits = 0): string {
  return n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

export const quick = process.argv.includes('--quick')

/** Forces a collection when node runs with --expose-gc (npm run bench does). */
export function collect (): void {
  (globalThis as { gc?: () => void }).gc?.()
}
