/** Reads a TLS file (PEM) named in options; a missing or unreadable one is an error that names the option and the path. */
import { readFileSync } from 'node:fs'

export function readPem (path: string | undefined, option: string): string | undefined {
  if (path === undefined) return undefined
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new Error(`${option}: cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
}
