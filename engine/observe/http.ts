/**
 * The monitoring endpoint (--http, off unless asked): /metrics for Prometheus, /healthz (the
 * process answers) and /readyz (it can do its job; 503 with what is not ready otherwise).
 */
import { createServer, type Server } from 'node:http'
import type { Logger } from './logger.js'
import type { Readiness } from './readiness.js'

export interface HttpEndpoint {
  host: string
  port: number
  close: () => Promise<void>
}

export interface HttpHandlers {
  /** The metrics in Prometheus' text format. */
  scrape: () => Promise<string>
  contentType: string
  readiness: () => Readiness
  logger: Logger
}

export async function startHttp (host: string, port: number, handlers: HttpHandlers): Promise<HttpEndpoint> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    if (path === '/metrics') {
      handlers.scrape().then((text) => {
        res.writeHead(200, { 'content-type': handlers.contentType }).end(text)
      }, (err: Error) => {
        handlers.logger.error({ err: err.message }, 'metrics collection failed')
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${err.message}\n`)
      })
      return
    }
    if (path === '/healthz') {
      json(res, 200, { status: 'ok' })
      return
    }
    if (path === '/readyz') {
      const r = handlers.readiness()
      json(res, r.ready ? 200 : 503, r.ready ? { status: 'ready' } : { status: 'not ready', problems: r.problems })
      return
    }
    json(res, 404, { error: `no such endpoint: ${path}; try /metrics, /healthz or /readyz` })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const address = server.address()
  const bound = typeof address === 'object' && address !== null ? address.port : port
  return {
    host,
    port: bound,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

function json (res: import('node:http').ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n')
}
