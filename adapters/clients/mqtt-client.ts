/** mqtt.js settings shared by the remote MQTT sink and the MQTT source: credentials, TLS files and the socket. */
import type { IClientOptions, MqttClient } from 'mqtt'
import { readPem } from './pem.js'

export interface MqttCredentials {
  username?: string
  password?: string
  /** Paths (already absolute) of PEM files. */
  tls?: { ca?: string, cert?: string, key?: string, rejectUnauthorized: boolean }
}

/** Adds credentials and TLS files to client options; an unreadable file throws, naming its option. */
export function withCredentials (options: IClientOptions, c: MqttCredentials): IClientOptions {
  if (c.username !== undefined) options.username = c.username
  if (c.password !== undefined) options.password = c.password
  if (c.tls !== undefined) {
    options.ca = readPem(c.tls.ca, 'tls.ca')
    options.cert = readPem(c.tls.cert, 'tls.cert')
    options.key = readPem(c.tls.key, 'tls.key')
    options.rejectUnauthorized = c.tls.rejectUnauthorized
  }
  return options
}

/** TCP_NODELAY on the client's socket (mqtt.js leaves Nagle on): acknowledgements and derived messages go at once. */
export function noDelay (client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (on: boolean) => void }
  stream.setNoDelay?.(true)
}
