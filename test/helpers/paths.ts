/** Paths the tests share: the project root, the fixtures and the test vectors among them. */
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** A test vector: fixtures/vectors/ holds copies of the shared vectors, with their provenance in its README. */
export function vectorPath (name: string): string {
  return fixturePath('vectors', name)
}

export function fixturePath (...parts: string[]): string {
  return join(projectRoot, 'fixtures', ...parts)
}
