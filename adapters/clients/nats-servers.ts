/** NATS server addresses, as options and sources write them: the schemes, and which mixes one connection cannot keep. No client library. */
export const NATS_SCHEMES: readonly string[] = ['nats:', 'tls:']

/** Whether a server address asks for TLS (`tls://`); a bare host:port is `nats://`. */
export function isTlsServer (server: string): boolean {
  return /^tls:\/\//i.test(server.trim())
}

/**
 * Why a list of servers cannot share one connection's TLS setting, or undefined. nats.js takes TLS
 * for the whole connection, so `tls://` beside `nats://` would be a promise it cannot keep.
 */
export function mixedSchemesProblem (servers: string[]): string | undefined {
  const tls = servers.filter(isTlsServer).length
  if (tls === 0 || tls === servers.length) return undefined
  return 'servers mix tls:// and nats://; TLS applies to the whole connection, so write tls:// for every server or for none'
}
