/**
 * aedes 1.2.0 as published, beside the patched copy signalbox runs: a copy of node_modules/aedes
 * with patches/aedes+1.2.0.patch taken back out, so a bench can run both in one round (what the
 * patch costs, and what it fixes). It sits under node_modules/, so its own imports resolve as the
 * patched copy's do.
 */
import { spawnSync } from 'node:child_process'
import { cpSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from './root.js'

let made: string | undefined

/** The entry file of the unpatched copy, made afresh once per bench process (the patch may have changed). */
export function unpatchedAedes (): string {
  if (made !== undefined) return made
  const dir = join(projectRoot, 'node_modules', '.signalbox-bench', 'aedes')
  const entry = join(dir, 'aedes.js')
  rmSync(dir, { recursive: true, force: true })
  cpSync(join(projectRoot, 'node_modules', 'aedes'), dir, { recursive: true })
  // The patch's paths are a/node_modules/aedes/...: strip three levels.
  const r = spawnSync('patch', ['-R', '-p3', '-s', '-d', dir, '-i', join(projectRoot, 'patches', 'aedes+1.2.0.patch')], { encoding: 'utf8' })
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`could not take the patch out of a copy of aedes: ${r.stderr || r.stdout}`)
  }
  made = entry
  return entry
}
