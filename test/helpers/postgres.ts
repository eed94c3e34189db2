/**
 * A real PostgreSQL for the tests: a cluster of its own made by initdb in a temporary directory,
 * on a free loopback port, stopped at teardown. PostgreSQL refuses to run as root and CI runs as
 * root: then the cluster belongs to, and the server runs as, `nobody`.
 */
import pg from 'pg'
import { initCluster } from './postgres-cluster.js'
import { spawnTracked } from './process.js'
import { freePort, restartable, type TestServer } from './servers.js'
import { tempDir } from './signalbox.js'
import { onTeardown } from './teardown.js'

export interface TestPostgres extends TestServer {
  /** The cluster's database `postgres`, as user `signalbox` (trusted: no password). */
  url: string
  /** Runs one statement on a connection of its own. */
  query: <R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<R[]>
}

export async function startPostgres (): Promise<TestPostgres> {
  const port = await freePort()
  // Speed over safety, for tests: nothing here must survive a power cut.
  const cluster = initCluster(tempDir(), port, { durable: false })
  const url = cluster.url
  const query = async <R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]> => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      return (await client.query<R>(sql, params)).rows
    } finally {
      await client.end()
    }
  }
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
  const server = restartable(port, url, () => spawnTracked(cluster.postgres, cluster.args, cluster.user), { stopSignal: 'SIGINT', ready })
  await server.start()
  // Newest teardown first: a clean stop runs before spawnTracked's SIGKILL, so no backend outlives it.
  onTeardown(async () => await server.stop())
  return { ...server, url, query }
}
