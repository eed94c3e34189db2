/**
 * Loads a module as it ships (compiled JavaScript in dist/), not through the TypeScript loader,
 * whose keepNames wrapper costs something on every function created. npm run bench builds first.
 * Callers keep the source's types: `await shipped<typeof import('../rules/logic/logic.js')>('rules/logic/logic.js')`.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { projectRoot } from './root.js'

export async function shipped<T> (relative: string): Promise<T> {
  const file = join(projectRoot, 'dist', relative)
  if (!existsSync(file)) throw new Error(`dist/${relative} is missing: run npm run build (npm run bench does)`)
  return await import(pathToFileURL(file).href) as T
}
