/**
 * Every sink type's spec, by the `type` a rules file names: what the rules layer (schema, checks,
 * outputs) is given. Pure: importing it loads no transport (adapters/registry.ts adds create()).
 */
import type { SinkSpec } from '../rules/model/sink-spec.js'
import { fileSinkSpec } from './specs/file.js'
import { httpSinkSpec } from './specs/http.js'
import { mqttSinkSpec } from './specs/mqtt.js'
import { natsSinkSpec } from './specs/nats.js'
import { postgresSinkSpec } from './specs/postgres.js'

export const SINK_SPECS: readonly SinkSpec[] = [
  natsSinkSpec,
  fileSinkSpec,
  mqttSinkSpec,
  postgresSinkSpec,
  httpSinkSpec
]
