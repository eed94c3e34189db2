/** The file sink's spec: its options (path template, format, rotation) and its path. */
import type { SinkSpec } from '../../rules/model/sink-spec.js'

/** Rotated files kept per path, unless `keep` says otherwise. */
export const DEFAULT_KEEP = 5

/** The file sink's options, as the schema below declares them (defaults filled in). */
export interface FileSinkOptions {
  path?: string
  format: 'jsonl' | 'raw'
  max_bytes?: number
  keep: number
}

export const fileSinkSpec: SinkSpec = {
  type: 'file',
  description: 'Appends each message to a file, as a JSON line (time, topic, rule, payload) or as its raw payload.',
  options: {
    path: {
      type: 'string',
      minLength: 1,
      description: 'File path template; relative paths start at the rules file\'s directory. `{capture}`, `{payload.a}`, `{meta.clientId}` and `{date}` (UTC, YYYY-MM-DD) fill in per message; directories are created. An output may give its own `path`.',
      examples: ['data/{room}/{date}.jsonl']
    },
    format: {
      enum: ['jsonl', 'raw'],
      default: 'jsonl',
      description: '`jsonl`: one JSON object per line with `time`, `topic`, `rule` and `payload` (the JSON value, or text with `encoding: utf8|base64`). `raw`: the payload bytes and a newline.'
    },
    max_bytes: {
      type: 'integer',
      minimum: 1024,
      description: 'Rotate a file before it would grow past this many bytes: `x.jsonl` becomes `x.jsonl.1`, and so on. Default: never rotate.'
    },
    keep: { type: 'integer', minimum: 1, maximum: 1000, default: DEFAULT_KEEP, description: 'Rotated files kept per path.' }
  },
  address: { field: 'path', syntax: 'path', fallback: 'none' },
  outputOptions: {
    path: { type: 'string', minLength: 1, description: 'Path template for this output, instead of the sink\'s `path`.' }
  },
  shorthand: { defaults: {} },
  validate: () => []
}
