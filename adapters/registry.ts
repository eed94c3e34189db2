/** Every sink type, by the `type` a rules file names. Adding a sink: its file, and one line here. */
import { fileSinkType } from './file.js'
import { mqttSinkType } from './mqtt.js'
import { natsSinkType } from './nats.js'
import type { SinkType } from './sink.js'

export const SINK_TYPES: readonly SinkType[] = [
  natsSinkType,
  fileSinkType,
  mqttSinkType
]

export function sinkType (type: string): SinkType | undefined {
  return SINK_TYPES.find((t) => t.type === type)
}
