/** Picks the source for a URL's scheme: mqtt(s)://, ws(s):// → MQTT; nats://, tls:// → NATS. */
import { MqttSource } from './mqtt-source.js'
import { NATS_SCHEMES } from '../clients/nats-servers.js'
import { NatsSource } from './nats-source.js'
import type { Source, SourceContext, SourceSettings } from './source.js'

export const MQTT_SCHEMES = ['mqtt:', 'mqtts:', 'ws:', 'wss:']

export function createSource (settings: SourceSettings, context: SourceContext): Source {
  const scheme = new URL(settings.url).protocol
  if (NATS_SCHEMES.includes(scheme)) return new NatsSource(settings, context)
  return new MqttSource(settings, context)
}

/** Why a source URL cannot be used, or undefined. */
export function sourceUrlProblem (url: string): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `'${url}' is not a URL; write mqtt://host:1883 or nats://host:4222`
  }
  if (![...MQTT_SCHEMES, ...NATS_SCHEMES].includes(parsed.protocol)) return `'${url}': the scheme must be mqtt://, mqtts://, ws://, wss://, nats:// or tls:// (NATS over TLS)`
  if (parsed.hostname === '') return `'${url}' names no host`
  return undefined
}
