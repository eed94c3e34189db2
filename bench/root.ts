/**
 * The project's root directory, from wherever this module runs: bench/ under the TypeScript
 * loader, or dist/bench/ as `npm run bench` compiles it.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findRoot (from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'signalbox.js'))) return dir
    if (dirname(dir) === dir) throw new Error(`no signalbox project above ${from}`)
  }
}

export const projectRoot = findRoot(dirname(fileURLToPath(import.meta.url)))

/** Node's arguments to run a bench script: compiled JavaScript as it is, TypeScript through tsx. */
export function scriptArgs (script: string): string[] {
  return script.endsWith('.ts') ? ['--import', 'tsx', script] : [script]
}
