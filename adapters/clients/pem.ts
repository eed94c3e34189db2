/** TLS files (PEM) a client names in its options: their schema, and reading them with errors that name the option. */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

/** The `tls:` option of a sink or source, as its schema (below) declares it. */
export interface TlsFileOptions {
  ca?: string
  cert?: string
  key?: string
  reject_unauthorized?: boolean
}

/** TLS files resolved against a base directory, for a client. */
export function resolvedTls (tls: TlsFileOptions | undefined, baseDir: string): { ca?: string, cert?: string, key?: string, rejectUnauthorized: boolean } | undefined {
  if (tls === undefined) return undefined
  const file = (path: string | undefined): string | undefined => path === undefined ? undefined : resolve(baseDir, path)
  return { ca: file(tls.ca), cert: file(tls.cert), key: file(tls.key), rejectUnauthorized: tls.reject_unauthorized !== false }
}

/** The `tls:` options of a client (a sink or a source): PEM files, and whether to verify the server. */
export function tlsFilesSchema (description: string): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    description,
    properties: {
      ca: { type: 'string', minLength: 1, description: 'CA certificate to trust.' },
      cert: { type: 'string', minLength: 1, description: 'Client certificate (with `key`).' },
      key: { type: 'string', minLength: 1, description: 'Client key.' },
      reject_unauthorized: { type: 'boolean', default: true, description: 'Refuse a server certificate that does not verify.' }
    }
  }
}

/** Reads a TLS file (PEM) named in options; a missing or unreadable one is an error that names the option and the path. */
export function readPem (path: string | undefined, option: string): string | undefined {
  if (path === undefined) return undefined
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new Error(`${option}: cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
}
