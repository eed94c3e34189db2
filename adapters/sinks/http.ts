/**
 * HTTP sink (Node's fetch). One request per message, its payload as the body; or, with `batch`, one
 * request per URL in each batch (a JSON array, or NDJSON). Delivered when the
 * status is one of `success`. Connection errors, timeouts, 408, 425, 429 and 5xx are retried with
 * backoff, waiting at least what Retry-After asks; any other status is the message's own: it is
 * dead-lettered with the status and the first bytes of the response. A logged message's id goes
 * in `Idempotency-Key` (a batch: the first message's id).
 */
import { byAddress, DeliveryError, donePrefix, QueuedSink, type Rejection } from '../queued-sink.js'
import type { SinkDefinition } from '../../rules/model/sink-spec.js'
import { typedSinkType, type Delivery, type SinkContext } from '../sink.js'
import { httpSinkSpec, type HttpSinkOptions } from '../specs/http.js'

const RETRIED = new Set([408, 425, 429])
const RESPONSE_EXCERPT = 200

class HttpSink extends QueuedSink {
  readonly type = 'http'
  private readonly success: ReadonlySet<number>
  private readonly batched: boolean

  constructor (definition: SinkDefinition, private readonly options: HttpSinkOptions, context: SinkContext) {
    const batched = options.batch !== undefined
    super(definition, context, batched ? { maxBatch: options.batch?.max_rows ?? 100, lingerMs: options.batch?.max_wait_ms ?? 100 } : { maxBatch: Math.max(64, options.max_in_flight), lingerMs: 0 })
    this.batched = batched
    this.success = new Set(options.success)
  }

  protected async connect (): Promise<void> {
    // No connection to hold: each request opens (or reuses) one; a failure shows in delivery.
    this.markUp()
  }

  protected async deliver (batch: Delivery[]): Promise<Rejection[]> {
    const rejected: Rejection[] = []
    const done = new Set<number>()
    // Batched: one request per URL, however the batch's URLs interleave; else one per message.
    const requests = this.batched ? byAddress(batch) : batch.map((_, i) => [i])
    const inFlight = this.options.max_in_flight
    for (let at = 0; at < requests.length; at += inFlight) {
      // Up to max_in_flight at once. One that must be retried ends the batch: the done prefix is
      // kept, and the rest (some of which may have succeeded) is sent again: at least once.
      const wave = requests.slice(at, at + inFlight)
      const results = await Promise.allSettled(wave.map(async (indices) => await this.request(indices.map((i) => batch[i]))))
      let failure: DeliveryError | undefined
      for (let w = 0; w < wave.length; w++) {
        const result = results[w]
        if (result.status === 'rejected') { failure ??= result.reason as DeliveryError; continue }
        for (const i of wave[w]) {
          done.add(i)
          if (result.value !== undefined) rejected.push({ index: i, reason: result.value })
        }
      }
      if (failure !== undefined) throw new DeliveryError(failure.message, donePrefix(done), rejected, { cause: failure, retryAfterMs: failure.retryAfterMs })
    }
    return rejected
  }

  /** Sends one request; resolves with a refusal reason, or throws DeliveryError to have it retried. */
  private async request (deliveries: Delivery[]): Promise<string | undefined> {
    const url = deliveries[0].address
    const headers: Record<string, string> = { 'content-type': this.contentType(deliveries[0]), ...(deliveries[0].values?.headers as Record<string, string> | undefined) }
    if (deliveries[0].id !== undefined) headers['idempotency-key'] = deliveries[0].id
    let response: Response
    try {
      // Node's fetch takes a Buffer; the BodyInit of @types/node 20 does not list Buffer<ArrayBufferLike>.
      response = await fetch(url, { method: this.options.method, headers, body: this.body(deliveries) as unknown as BodyInit, signal: AbortSignal.timeout(this.options.timeout_ms) })
    } catch (err) {
      const reason = (err as Error).name === 'TimeoutError' ? `no answer from ${url} within ${this.options.timeout_ms} ms` : `${url}: ${describeFetchError(err)}`
      throw new DeliveryError(reason, 0, [], { cause: err })
    }
    const text = await response.text().catch(() => '')
    if (this.success.has(response.status)) return undefined
    const reason = `HTTP ${response.status} from ${url}: ${text.slice(0, RESPONSE_EXCERPT)}`
    if (RETRIED.has(response.status) || response.status >= 500) {
      throw new DeliveryError(reason, 0, [], { retryAfterMs: retryAfterMs(response.headers.get('retry-after')) })
    }
    return reason
  }

  private contentType (first: Delivery): string {
    if (typeof first.values?.body === 'string') return 'text/plain; charset=utf-8'
    if (!this.batched) return 'application/json'
    return this.options.batch?.format === 'ndjson' ? 'application/x-ndjson' : 'application/json'
  }

  private body (deliveries: Delivery[]): Uint8Array {
    // A body template (line protocol and the like): the rendered bodies, one per line.
    const rendered = deliveries.map((d) => d.values?.body)
    if (rendered.every((b) => typeof b === 'string')) return Buffer.from(rendered.join('\n') + (this.batched ? '\n' : ''))
    if (!this.batched) return deliveries[0].payload
    if (this.options.batch?.format === 'ndjson') return Buffer.concat(deliveries.flatMap((d) => [d.payload, Buffer.from('\n')]))
    // A payload that is not JSON goes in the array as a string.
    return Buffer.from('[' + deliveries.map((d) => jsonOrString(d.payload)).join(',') + ']')
  }

  protected async disconnect (): Promise<void> {}
}

function jsonOrString (payload: Buffer): string {
  const text = payload.toString('utf8')
  try {
    JSON.parse(text)
    return text
  } catch {
    return JSON.stringify(text)
  }
}

/** Retry-After as milliseconds: delay-seconds or an HTTP date. */
function retryAfterMs (value: string | null): number | undefined {
  if (value === null) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

function describeFetchError (err: unknown): string {
  const cause = (err as { cause?: { code?: string, message?: string } }).cause
  return cause?.code ?? cause?.message ?? (err as Error).message
}

export const httpSinkType = typedSinkType<HttpSinkOptions>(httpSinkSpec, (definition, options, context) => new HttpSink(definition, options, context))
