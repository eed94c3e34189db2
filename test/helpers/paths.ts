/** Paths the tests share: the project root, the shared test vectors beside it, the fixtures. */
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** A file under ../shared/vectors/, which the brief places beside the project root. */
export function vectorPath (name: string): string {
  const path = join(projectRoot, '..', 'shared', 'vectors', name)
  if (!existsSync(path)) throw new Error(`test vector ${path} not found: ../shared/ must sit beside the project root`)
  return path
}

export function fixturePath (...parts: string[]): string {
  return join(projectRoot, 'fixtures', ...parts)
}
