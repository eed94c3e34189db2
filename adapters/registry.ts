/** Every sink type with its create(), by the `type` a rules file names: what the engine builds sinks from (in adapters/sink-specs.ts's order). */
import { fileSinkType } from './sinks/file.js'
import { httpSinkType } from './sinks/http.js'
import { mqttSinkType } from './sinks/mqtt.js'
import { natsSinkType } from './sinks/nats.js'
import { postgresSinkType } from './sinks/postgres.js'
import type { SinkType } from './sink.js'

export const SINK_TYPES: readonly SinkType[] = [
  natsSinkType,
  fileSinkType,
  mqttSinkType,
  postgresSinkType,
  httpSinkType
]

export function sinkType (type: string): SinkType | undefined {
  return SINK_TYPES.find((t) => t.type === type)
}
