/** TLS files (PEM) a client names in its options: their schema, and reading them with errors that name the option. */
import { readFileSync } from 'node:fs'

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
