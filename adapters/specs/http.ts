/** The HTTP sink's spec: its options (URL template, method, headers, timeout, batching) and its URL. */
import type { SinkOptionProblem, SinkSpec } from '../../rules/model/sink-spec.js'

/** The HTTP sink's options, as the schema below declares them (defaults filled in). */
export interface HttpSinkOptions {
  url?: string
  method: 'POST' | 'PUT' | 'PATCH'
  headers?: Record<string, string>
  body?: string
  max_in_flight: number
  timeout_ms: number
  success: number[]
  batch?: { max_rows?: number, max_wait_ms?: number, format?: 'json_array' | 'ndjson' }
}

function validateHttp (options: Record<string, unknown>): SinkOptionProblem[] {
  const url = options.url
  // A template: only its scheme and host can be checked before a message fills it in.
  if (typeof url === 'string' && !/^https?:\/\/[^/{}\s]+/.test(url)) return [{ path: ['url'], message: `'${url}': write http:// or https:// and a host, e.g. http://127.0.0.1:8080/ingest/{room}` }]
  return []
}

const url = {
  type: 'string',
  minLength: 1,
  description: 'URL template: `{capture}`, `{payload.a}` and `{meta.clientId}` fill in per message, percent-encoded. An output may give its own `url`.',
  examples: ['http://127.0.0.1:8080/ingest/{room}']
}

export const httpSinkSpec: SinkSpec = {
  type: 'http',
  description: 'Sends each message (or a batch of them) to an HTTP endpoint; retries connection errors, timeouts, 408, 425, 429 and 5xx with backoff (honouring Retry-After); dead-letters other refusals.',
  options: {
    url,
    method: { enum: ['POST', 'PUT', 'PATCH'], default: 'POST', description: 'Request method.' },
    headers: {
      type: 'object',
      additionalProperties: { type: 'string' },
      // eslint-disable-next-line no-template-curly-in-string -- the `${env:NAME}` syntax, shown as written
      description: 'Request headers, each a template (`{capture}`, `{payload.a}`, `{meta.clientId}`); keep secrets out of the file with `${env:NAME}`.'
    },
    body: {
      type: 'string',
      minLength: 1,
      description: 'Body template for text protocols (InfluxDB\'s line protocol: `temperature,room={room} celsius={payload.celsius}`). Default: the payload.',
      examples: ['temperature,room={room} celsius={payload.celsius}']
    },
    max_in_flight: { type: 'integer', minimum: 1, maximum: 256, default: 1, description: 'Requests at once. Above 1, messages may arrive out of order.' },
    timeout_ms: { type: 'integer', minimum: 100, maximum: 600000, default: 10000, description: 'How long a request may take before it is retried.' },
    success: { type: 'array', items: { type: 'integer', minimum: 100, maximum: 599 }, minItems: 1, default: [200, 201, 202, 204], description: 'Status codes that count as delivered.' },
    batch: {
      type: 'object',
      additionalProperties: false,
      properties: {
        max_rows: { type: 'integer', minimum: 1, maximum: 10000, description: 'Most messages per request (default 100).' },
        max_wait_ms: { type: 'integer', minimum: 0, maximum: 60000, description: 'How long a batch waits to fill (default 100).' },
        format: { enum: ['json_array', 'ndjson'], description: '`json_array` (default): a JSON array of the payloads; `ndjson`: one payload per line.' }
      },
      description: 'Without it, one request per message with the payload as its body. With it, one request per batch of messages for the same URL.'
    }
  },
  address: { field: 'url', syntax: 'url', fallback: 'none' },
  outputOptions: {
    url: { ...url, description: 'URL template for this output, instead of the sink\'s `url`.' },
    headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Header templates for this output, instead of the sink\'s `headers`.' },
    body: { type: 'string', minLength: 1, description: 'Body template for this output, instead of the sink\'s `body`.' }
  },
  templates: [{ option: 'headers', syntax: 'header', map: true }, { option: 'body', syntax: 'text' }],
  validate: validateHttp
}
