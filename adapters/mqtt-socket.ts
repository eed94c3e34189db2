/** Socket settings of the mqtt.js clients (the remote MQTT sink and the MQTT source). */
import type { MqttClient } from 'mqtt'

/** TCP_NODELAY on the client's socket (mqtt.js leaves Nagle on): acknowledgements and derived messages go at once. */
export function noDelay (client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (on: boolean) => void }
  stream.setNoDelay?.(true)
}
