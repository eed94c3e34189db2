// HTTP sink against a real node:http server started by the test: the shared contract; 503 with
// Retry-After retried; a 400 dead-lettered through a rule; templated URLs; batches; timeouts.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { pino } from 'pino'
import { httpSinkType } from '../../../adapters/sinks/http.js'
import type { Sink } from '../../../adapters/sink.js'
import { until } from '../../helpers/latch.js'
import { connect, subscribe } from '../../helpers/mqtt.js'
import { assertAccounted, delivery, describeSinkContract } from '../../helpers/sink-contract.js'
import { startSignalbox } from '../../helpers/signalbox.js'
import { onTeardown } from '../../helpers/teardown.js'

const silent = pino({ level: 'silent' })

interface Hit { method: string, url: string, headers: IncomingMessage['headers'], body: string, at: number }

/** A loopback HTTP server that records each request and answers with `reply` (200 by default). */
async function startEndpoint (reply: (hit: Hit, res: ServerResponse) => void = (_hit, res) => res.end()): Promise<{ url: string, hits: Hit[], down: () => Promise<void>, up: () => Promise<void> }> {
  const hits: Hit[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => {
      const hit = { method: req.method!, url: req.url!, headers: req.headers, body, at: Date.now() }
      hits.push(hit)
      reply(hit, res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const close = async (): Promise<void> => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) }
  onTeardown(close)
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    down: close,
    up: async () => await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  }
}

function httpSink (options: Record<string, unknown>): Sink {
  const sink = httpSinkType.create({ name: 'hook', type: 'http', options, baseDir: '/', declaredAt: 'test', implicit: false }, { logger: silent })
  onTeardown(async () => await sink.close(0))
  return sink
}

async function started (options: Record<string, unknown>): Promise<Sink> {
  const sink = httpSink(options)
  await sink.start()
  return sink
}

describeSinkContract('http', async () => {
  const endpoint = await startEndpoint()
  return {
    address: `${endpoint.url}/contract`,
    create: (queueSize) => httpSink({ queue_size: queueSize }),
    received: async (n, ms = 10_000) => {
      await until(() => endpoint.hits.length >= n, ms, `${n} requests (have ${endpoint.hits.length})`)
      return endpoint.hits.map((h) => h.body)
    },
    down: endpoint.down,
    up: endpoint.up
  }
})

describe('http sink', function () {
  this.timeout(30_000)

  it('retries a 503, waiting what Retry-After asks, and delivers once the endpoint answers 2xx', async () => {
    let refusals = 2
    const endpoint = await startEndpoint((_hit, res) => {
      if (refusals-- > 0) { res.writeHead(503, { 'retry-after': '1' }); res.end('busy'); return }
      res.writeHead(204); res.end()
    })
    const sink = await started({})
    sink.send(delivery(`${endpoint.url}/in`, 1))
    assert.equal(await sink.flush(10_000), true)
    assert.equal(endpoint.hits.length, 3)
    assert.ok(endpoint.hits[1].at - endpoint.hits[0].at >= 950, `waited ${endpoint.hits[1].at - endpoint.hits[0].at} ms for Retry-After: 1`)
    const c = sink.counters()
    assert.deepEqual([c.delivered, c.failures, c.retried], [1, 2, 2])
    assertAccounted(sink)
  })

  it('a timeout is retried', async () => {
    let first = true
    const endpoint = await startEndpoint((_hit, res) => {
      if (first) { first = false; setTimeout(() => res.end(), 1500); return }
      res.end()
    })
    const sink = await started({ timeout_ms: 300 })
    sink.send(delivery(`${endpoint.url}/slow`, 1))
    assert.equal(await sink.flush(10_000), true)
    assert.equal(sink.counters().failures, 1)
    assert.equal(endpoint.hits.length, 2, 'the timed-out request was sent again')
    assert.equal(sink.counters().delivered, 1)
  })

  it('through a rule: templated URL, headers from the sink, the id as Idempotency-Key; a 400 is dead-lettered with its status and body, the rest delivered', async () => {
    const endpoint = await startEndpoint((hit, res) => {
      if (hit.body.includes('"bad"')) { res.writeHead(400); res.end('field "bad" is not allowed'); return }
      res.writeHead(201); res.end()
    })
    const sb = await startSignalbox(`version: 1
sinks:
  hook:
    type: http
    url: "${endpoint.url}/ingest/{room}"
    headers: { authorization: "Bearer t0ken" }
rules:
  - name: forward
    from: hooks/+room
    to:
      - sink: hook
`, { settings: { durability: 'process' } })
    const letters = await subscribe(sb.port, ['$signalbox/dead-letter/#'])
    const client = await connect(sb.port)
    await client.publishAsync('hooks/living room', JSON.stringify({ n: 1 }), { qos: 1 })
    await client.publishAsync('hooks/attic', JSON.stringify({ bad: true }), { qos: 1 })
    await client.publishAsync('hooks/hall', JSON.stringify({ n: 3 }), { qos: 1 })
    const [letter] = await letters.wait(1, 10_000)
    await until(() => sb.sinks.get('hook')!.counters().delivered === 2, 10_000, 'two delivered')
    assert.deepEqual(endpoint.hits.map((h) => [h.method, h.url]), [['POST', '/ingest/living%20room'], ['POST', '/ingest/attic'], ['POST', '/ingest/hall']])
    assert.equal(endpoint.hits[0].headers.authorization, 'Bearer t0ken')
    assert.equal(endpoint.hits[0].headers['content-type'], 'application/json')
    assert.match(String(endpoint.hits[0].headers['idempotency-key']), /^[0-9a-f]{12}-\d+\/0\/forward\/0$/)
    const dead = JSON.parse(letter.payload) as { code: string, reason: string, payload: string }
    assert.equal(dead.code, 'SINK_REJECTED')
    assert.match(dead.reason, /^sink 'hook': HTTP 400 from http:\/\/127\.0\.0\.1:\d+\/ingest\/attic: field "bad" is not allowed$/)
    assert.deepEqual(JSON.parse(dead.payload), { bad: true })
    assertAccounted(sb.sinks.get('hook')!)
  })

  it('batches: one request per run of messages for the same URL, as a JSON array or NDJSON', async () => {
    const endpoint = await startEndpoint()
    const sink = await started({ batch: { max_rows: 50, max_wait_ms: 50 } })
    for (let i = 0; i < 120; i++) sink.send(delivery(`${endpoint.url}/a`, i))
    assert.equal(await sink.flush(10_000), true)
    const bodies = endpoint.hits.map((h) => JSON.parse(h.body) as Array<{ seq: number }>)
    assert.ok(endpoint.hits.length <= 4, `${endpoint.hits.length} requests for 120 messages`)
    assert.deepEqual(bodies.flat().map((b) => b.seq), Array.from({ length: 120 }, (_, i) => i))
    // Interleaved URLs still make one request per URL and batch, each in order.
    const mixed = await started({ batch: { max_rows: 20, max_wait_ms: 50 } })
    const start = endpoint.hits.length
    for (let i = 0; i < 20; i++) mixed.send(delivery(`${endpoint.url}/room${i % 2}`, i))
    assert.equal(await mixed.flush(10_000), true)
    const perUrl = endpoint.hits.slice(start).map((h) => [h.url, (JSON.parse(h.body) as Array<{ seq: number }>).map((b) => b.seq)])
    assert.deepEqual(perUrl, [['/room0', [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]], ['/room1', [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]]])
    const nd = await started({ batch: { format: 'ndjson', max_rows: 10, max_wait_ms: 20 } })
    const before = endpoint.hits.length
    for (let i = 0; i < 10; i++) nd.send(delivery(`${endpoint.url}/b`, i))
    assert.equal(await nd.flush(10_000), true)
    const last = endpoint.hits.slice(before)
    assert.equal(last.length, 1)
    assert.equal(last[0].headers['content-type'], 'application/x-ndjson')
    assert.deepEqual(last[0].body.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq), Array.from({ length: 10 }, (_, i) => i))
  })

  it('header and body templates per message (a line protocol), and a value that would inject a header refused', async () => {
    const endpoint = await startEndpoint()
    const sb = await startSignalbox(`version: 1
sinks:
  influx:
    type: http
    url: "${endpoint.url}/write"
    headers: { x-room: "{room}", x-client: "{meta.clientId}" }
    body: "temperature,room={room} celsius={payload.celsius}"
rules:
  - name: lines
    from: sensors/+room/temperature
    to:
      - sink: influx
`)
    const letters = await subscribe(sb.port, ['$signalbox/dead-letter/#'])
    const client = await connect(sb.port)
    await client.publishAsync('sensors/kitchen/temperature', JSON.stringify({ celsius: 21.5 }), { qos: 1 })
    await client.publishAsync('sensors/evil\r\nx-admin: 1/temperature', JSON.stringify({ celsius: 1 }), { qos: 1 })
    const [letter] = await letters.wait(1, 10_000)
    await until(() => endpoint.hits.length === 1, 10_000, 'one request')
    assert.equal(endpoint.hits[0].body, 'temperature,room=kitchen celsius=21.5')
    assert.equal(endpoint.hits[0].headers['content-type'], 'text/plain; charset=utf-8')
    assert.equal(endpoint.hits[0].headers['x-room'], 'kitchen')
    assert.equal(endpoint.hits[0].headers['x-client'], client.options.clientId)
    const dead = JSON.parse(letter.payload) as { code: string, reason: string }
    assert.equal(dead.code, 'TOPIC_REFUSED')
    assert.match(dead.reason, /\(headers\) refused: headers\.x-room: \{room\} holds a line break or NUL/)
  })

  it('max_in_flight: several requests at once', async () => {
    let open = 0
    let most = 0
    const endpoint = await startEndpoint((_hit, res) => {
      open++
      most = Math.max(most, open)
      setTimeout(() => { open--; res.end() }, 50)
    })
    // The server counts a request once its body has arrived; each waits 50 ms for its answer.
    const sink = await started({ max_in_flight: 8 })
    for (let i = 0; i < 40; i++) sink.send(delivery(`${endpoint.url}/p`, i))
    assert.equal(await sink.flush(10_000), true)
    assert.equal(sink.counters().delivered, 40)
    assert.deepEqual(endpoint.hits.map((h) => (JSON.parse(h.body) as { seq: number }).seq).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i))
    assert.ok(most > 1 && most <= 8, `${most} requests at once`)
  })

  it('method and success: a PUT whose 202 is not in success is refused for good', async () => {
    const endpoint = await startEndpoint((hit, res) => { res.writeHead(hit.url === '/accepted' ? 202 : 200); res.end('queued') })
    const sink = await started({ method: 'PUT', success: [200] })
    sink.send(delivery(`${endpoint.url}/ok`, 1))
    sink.send(delivery(`${endpoint.url}/accepted`, 2))
    assert.equal(await sink.flush(10_000), true)
    assert.deepEqual(endpoint.hits.map((h) => [h.method, h.url]), [['PUT', '/ok'], ['PUT', '/accepted']])
    const c = sink.counters()
    assert.deepEqual([c.delivered, c.dropped.rejected, c.failures], [1, 1, 0])
    assert.match(sink.health().lastDrop ?? '', /HTTP 202 from http:\/\/127\.0\.0\.1:\d+\/accepted: queued/)
  })
})
