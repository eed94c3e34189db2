/**
 * Watches rules (or test) files and directories with chokidar and reports changes, debounced, so an
 * editor's save (often a write to a temporary file and a rename) causes one reload, not three.
 */
import { watch } from 'chokidar'
import type { Logger } from '../observe/logger.js'

export const DEFAULT_DEBOUNCE_MS = 100

export interface Watcher {
  /** Resolves once the initial scan is done: changes after this are reported. */
  ready: Promise<void>
  close: () => Promise<void>
}

/**
 * Calls `onChange` with the paths that changed, at most once per `debounceMs` of quiet. In a
 * directory, only files for which `relevant` holds count (new files included); a file named
 * directly always counts.
 */
export function watchPaths (
  paths: string[], relevant: (path: string) => boolean, onChange: (changed: string[]) => void,
  options: { logger: Logger, debounceMs?: number }
): Watcher {
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS
  const named = new Set(paths)
  const watcher = watch(paths, {
    ignoreInitial: true,
    // Editors that save by rename: an unlink followed by an add is reported as one change.
    atomic: true,
    depth: 0,
    ignored: (path, stats) => stats?.isFile() === true && !named.has(path) && !relevant(path)
  })
  let pending = new Set<string>()
  let timer: NodeJS.Timeout | undefined
  const changed = (path: string): void => {
    if (!named.has(path) && !relevant(path)) return
    pending.add(path)
    clearTimeout(timer)
    timer = setTimeout(() => {
      const paths = [...pending]
      pending = new Set()
      onChange(paths)
    }, debounceMs)
  }
  watcher.on('add', changed).on('change', changed).on('unlink', changed)
  watcher.on('error', (err) => options.logger.warn({ err: (err as Error).message }, 'file watching failed'))
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()))
  return {
    ready,
    close: async () => {
      clearTimeout(timer)
      await watcher.close()
    }
  }
}

/** A rules file in a watched directory: *.yaml or *.yml, not a *.test.yaml. */
export function isRulesFile (path: string): boolean {
  return /\.ya?ml$/.test(path) && !/\.test\.ya?ml$/.test(path)
}
