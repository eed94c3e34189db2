/** Paths the tests share: the project root, the fixtures and the test vectors among them. */
import { readdirSync, readFileSync } from 'node:fs'
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

/** The user documentation: README.md and docs/*.md, each with its path from the project root and its text. */
export function documents (): Array<{ file: string, text: string }> {
  const docs = readdirSync(join(projectRoot, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => join('docs', f))
  return ['README.md', ...docs].map((file) => ({ file, text: readFileSync(join(projectRoot, file), 'utf8') }))
}

/** Every ```yaml block of the documentation. */
export function documentedYaml (): string[] {
  return documents().flatMap((d) => [...d.text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]))
}
