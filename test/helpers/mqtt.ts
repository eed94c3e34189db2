/** Real mqtt.js clients for tests, closed at teardown. */
import mqtt, { type MqttClient } from 'mqtt'
import { Latch } from './latch.js'
import { onTeardown } from './teardown.js'

export interface Received {
  topic: string
  payload: string
  bytes: Buffer
  retain: boolean
  qos: number
}

/** Connects to 127.0.0.1:port and waits for CONNACK. */
export async function connect (port: number): Promise<MqttClient> {
  const client = await mqtt.connectAsync({ host: '127.0.0.1', port, reconnectPeriod: 0, connectTimeout: 5000 })
  onTeardown(() => client.endAsync(true))
  return client
}

/** Subscribes to filters and collects what arrives in a latch. */
export async function subscribe (port: number, filters: string[]): Promise<Latch<Received>> {
  const client = await connect(port)
  const latch = new Latch<Received>()
  client.on('message', (topic, payload, packet) => latch.push({ topic, payload: payload.toString(), bytes: payload, retain: packet.retain, qos: packet.qos }))
  await client.subscribeAsync(filters, { qos: 1 })
  return latch
}
