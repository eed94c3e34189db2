/** Every sink type with its create(), by the `type` a rules file names: what the engine builds sinks from (in adapters/sink-specs.ts's order). */
import { fileSinkType } from './sinks/file.js'
import { mqttSinkType } from './sinks/mqtt.js'
import { natsSinkType } from './sinks/nats.js'
import type { SinkType } from './sink.js'

export const SINK_TYPES: readonly SinkType[] = [
  natsSinkType,
  fileSinkType,
  mqttSinkType
]

export function sinkType (type: string): SinkType | undefined {
  return SINK_TYPES.find((t) => t.type === type)
}
