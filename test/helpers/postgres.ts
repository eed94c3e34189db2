/**
 * A real PostgreSQL for the tests: a cluster of its own made by initdb in a temporary directory,
 * on a free loopback port, stopped at teardown. PostgreSQL refuses to run as root and CI runs as
 * root: then the cluster belongs to, and the server runs as, `nobody`.
 */
import { spawnSync } from 'node:child_process'
import { chownSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { spawnTracked } from './process.js'
import { freePort, restartable, type TestServer } from './servers.js'
import { tempDir } from './signalbox.js'
import { onTeardown } from './teardown.js'

const INSTALL = 'apt-get install -y postgresql'
/** Debian's `nobody`: the user the cluster runs as when the tests run as root. */
const NOBODY = 65534

export interface TestPostgres extends TestServer {
  /** The cluster's database `postgres`, as user `signalbox` (trusted: no password). */
  url: string
  /** Runs one statement on a connection of its own. */
  query: <R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<R[]>
}

/** Where Debian's server binaries are (/usr/lib/postgresql/<version>/bin), newest version first. */
export function postgresBinDir (): string {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a)) : []
  if (versions.length > 0) return join(root, versions[0], 'bin')
  const configured = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' })
  if (configured.status === 0 && existsSync(join(configured.stdout.trim(), 'postgres'))) return configured.stdout.trim()
  throw new Error(`the PostgreSQL server (postgres, initdb) was not found. Install: ${INSTALL}`)
}

export async function startPostgres (): Promise<TestPostgres> {
  const bin = postgresBinDir()
  const dir = tempDir()
  const data = join(dir, 'data')
  const asUser = process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : {}
  if (asUser.uid !== undefined) chownSync(dir, NOBODY, NOBODY)
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'signalbox', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], { encoding: 'utf8', ...asUser })
  if (init.status !== 0) throw new Error(`initdb failed (${String(init.status)}):\n${init.stderr}`)
  const port = await freePort()
  const url = `postgres://signalbox@127.0.0.1:${port}/postgres`
  const query = async <R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]> => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      return (await client.query<R>(sql, params)).rows
    } finally {
      await client.end()
    }
  }
  // Speed over safety, for tests: nothing here must survive a power cut.
  const args = ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'max_connections=50']
  const ready = async (): Promise<void> => {
    const deadline = Date.now() + 20_000
    for (;;) {
      try {
        await query('SELECT 1')
        return
      } catch (err) {
        // 57P03: the database system is starting up.
        if (Date.now() > deadline) throw err
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
  // SIGINT is PostgreSQL's fast shutdown: it disconnects its clients (SIGTERM would wait for them).
  const server = restartable(port, url, () => spawnTracked(join(bin, 'postgres'), args, asUser), { stopSignal: 'SIGINT', ready })
  await server.start()
  // Newest teardown first: a clean stop runs before spawnTracked's SIGKILL, so no backend outlives it.
  onTeardown(async () => await server.stop())
  return { ...server, url, query }
}
