/**
 * `${env:NAME}` in a sink's options: the value of the environment variable, so secrets (a database
 * password, an API token) stay out of rules files. An unset variable is a problem at its option.
 */
import type { DataPath } from '../source/load.js'

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g

export interface UnsetEnv {
  path: DataPath
  name: string
}

/** The options with every `${env:NAME}` in their strings (at any depth) replaced, and the names not set. */
export function resolveEnvRefs<T> (value: T, env: NodeJS.ProcessEnv = process.env, path: DataPath = []): { value: T, unset: UnsetEnv[] } {
  const unset: UnsetEnv[] = []
  const walk = (v: unknown, at: DataPath): unknown => {
    if (typeof v === 'string') {
      return v.replace(ENV_REF, (ref, name: string) => {
        const found = env[name]
        if (found === undefined) { unset.push({ path: at, name }); return ref }
        return found
      })
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...at, i]))
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, [...at, k])]))
    return v
  }
  return { value: walk(value, path) as T, unset }
}
