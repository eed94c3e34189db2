/**
 * A PostgreSQL cluster of one's own, for the tests and the benchmarks: Debian's server binaries,
 * initdb in a directory given, and the arguments that serve it on one loopback port. PostgreSQL
 * refuses to run as root: run as root, the cluster belongs to, and its server runs as, `nobody`.
 * No test framework here (bench/ uses it too); test/helpers/postgres.ts adds start, stop, teardown.
 */
import { spawnSync } from 'node:child_process'
import { chownSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

export const POSTGRES_INSTALL = 'apt-get install -y postgresql'
/** Debian's `nobody`. */
const NOBODY = 65534

export interface Cluster {
  /** The server binary. */
  postgres: string
  /** Its arguments: the data directory, the port, loopback only, the socket in `dir`. */
  args: string[]
  /** Whom it runs as: `{}`, or nobody's uid and gid when this process is root. */
  user: { uid?: number, gid?: number }
  /** User `signalbox` (trusted, no password), database `postgres`. */
  url: string
}

/** Where Debian's server binaries are (/usr/lib/postgresql/<version>/bin), newest version first. */
export function postgresBinDir (): string {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a)) : []
  if (versions.length > 0) return join(root, versions[0], 'bin')
  const configured = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' })
  if (configured.status === 0 && existsSync(join(configured.stdout.trim(), 'postgres'))) return configured.stdout.trim()
  throw new Error(`the PostgreSQL server (postgres, initdb) was not found. Install: ${POSTGRES_INSTALL}`)
}

/**
 * Makes a cluster in `dir` (empty, made by the caller) for `port`. `durable: false` trades crash
 * safety for speed (fsync off): right for tests, and for a benchmark only where it says so.
 */
export function initCluster (dir: string, port: number, options: { durable?: boolean } = {}): Cluster {
  const bin = postgresBinDir()
  const data = join(dir, 'data')
  const user = process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : {}
  if (user.uid !== undefined) chownSync(dir, NOBODY, NOBODY)
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'signalbox', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], { encoding: 'utf8', ...user })
  if (init.status !== 0) throw new Error(`initdb failed (${String(init.status)}):\n${init.stderr}`)
  const args = ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'max_connections=50']
  if (options.durable === false) args.push('-c', 'fsync=off', '-c', 'full_page_writes=off')
  return { postgres: join(bin, 'postgres'), args, user, url: `postgres://signalbox@127.0.0.1:${port}/postgres` }
}
