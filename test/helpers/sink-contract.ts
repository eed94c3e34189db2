/**
 * The contract every sink passes, against its real destination: start and close; one message;
 * 1,000 in order; destination down → a bounded queue and counted drops, then the queue delivered;
 * close drains. After every test `emitted = delivered + dropped + depth` holds.
 */
import assert from 'node:assert/strict'
import type { Delivery, Sink } from '../../adapters/sink.js'
import { until } from './latch.js'
import { onTeardown } from './teardown.js'

export interface SinkHarness {
  /** A new sink (not started) for this destination, with `queue_size: queueSize`. */
  create: (queueSize: number) => Sink
  /** Where deliveries go: a subject, topic or file path. */
  address: string
  /** Resolves with the payloads the destination holds, in arrival order, once it holds at least `count`. */
  received: (count: number, ms?: number) => Promise<string[]>
  /** Takes the destination away (server stopped, disk full). */
  down: () => Promise<void>
  /** Brings it back. */
  up: () => Promise<void>
}

export function delivery (address: string, seq: number): Delivery {
  return { rule: 'contract', topic: 'contract/in', address, payload: Buffer.from(JSON.stringify({ seq })), qos: 1, retain: false, hops: 1, time: Date.now() }
}

/** emitted = delivered + dropped + still queued: no message unaccounted for. */
export function assertAccounted (sink: Sink): void {
  const c = sink.counters()
  const dropped = c.dropped.queue_full + c.dropped.rejected + c.dropped.shutdown
  assert.equal(c.emitted, c.delivered + dropped + sink.health().depth, `accounting: ${JSON.stringify({ ...c, depth: sink.health().depth })}`)
}

function seqs (payloads: string[]): number[] {
  return payloads.map((p) => (JSON.parse(p) as { seq: number }).seq)
}

async function started (harness: SinkHarness, queueSize = 10_000): Promise<Sink> {
  const sink = harness.create(queueSize)
  onTeardown(async () => await sink.close(0))
  await sink.start()
  await until(() => sink.health().state === 'up', 10_000, `sink ${sink.name} up`)
  return sink
}

export function describeSinkContract (name: string, setup: () => Promise<SinkHarness>): void {
  describe(`sink contract: ${name}`, function () {
    this.timeout(60_000)
    let harness: SinkHarness
    beforeEach(async () => { harness = await setup() })

    it('starts, reports up, and closes', async () => {
      const sink = await started(harness)
      assert.equal(sink.health().depth, 0)
      await sink.close(1000)
      assert.equal(sink.health().state, 'closed')
      const { emitted, queued, delivered, retried, failures, dropped } = sink.counters()
      assert.deepEqual({ emitted, queued, delivered, retried, failures, dropped }, { emitted: 0, queued: 0, delivered: 0, retried: 0, failures: 0, dropped: { queue_full: 0, rejected: 0, shutdown: 0 } })
    })

    it('delivers one message', async () => {
      const sink = await started(harness)
      sink.send(delivery(harness.address, 1))
      assert.deepEqual(seqs(await harness.received(1)), [1])
      assert.equal(await sink.flush(5000), true)
      assert.equal(sink.counters().delivered, 1)
      assertAccounted(sink)
    })

    it('delivers 1,000 messages in order', async () => {
      const sink = await started(harness)
      for (let i = 1; i <= 1000; i++) sink.send(delivery(harness.address, i))
      const got = seqs(await harness.received(1000, 20_000))
      assert.deepEqual(got, Array.from({ length: 1000 }, (_, i) => i + 1))
      assert.equal(await sink.flush(5000), true)
      assert.equal(sink.counters().delivered, 1000)
      assertAccounted(sink)
    })

    it('holds a bounded queue while the destination is down, counts the overflow, and delivers the queue when it is back', async () => {
      const sink = await started(harness, 100)
      sink.send(delivery(harness.address, 0))
      await harness.received(1)
      await sink.flush(5000)
      await harness.down()
      for (let i = 1; i <= 150; i++) sink.send(delivery(harness.address, i))
      // Nothing can be confirmed while the destination is away: the first 100 wait, the newest 50 are dropped.
      assert.equal(sink.counters().dropped.queue_full, 50)
      assert.equal(sink.health().depth, 100)
      assertAccounted(sink)
      await harness.up()
      assert.equal(await sink.flush(30_000), true, `queue drained: ${JSON.stringify(sink.health())}`)
      const got = new Set(seqs(await harness.received(101, 20_000)))
      for (let i = 0; i <= 100; i++) assert.ok(got.has(i), `message ${i} missing`)
      for (let i = 101; i <= 150; i++) assert.ok(!got.has(i), `message ${i} was counted as dropped but arrived`)
      assert.equal(sink.counters().delivered, 101)
      assertAccounted(sink)
    })

    it('drains on close, and counts what a close cannot deliver in time', async () => {
      const sink = await started(harness)
      for (let i = 1; i <= 500; i++) sink.send(delivery(harness.address, i))
      await sink.close(20_000)
      assert.equal(sink.counters().delivered, 500)
      // Every one arrived (a sink may deliver one twice: at least once).
      assert.deepEqual([...new Set(seqs(await harness.received(500)))].sort((a, b) => a - b), Array.from({ length: 500 }, (_, i) => i + 1))
      sink.send(delivery(harness.address, 501))
      assert.equal(sink.counters().dropped.shutdown, 1, 'a message sent after close is counted')
      assertAccounted(sink)

      const second = await started(harness)
      await harness.down()
      for (let i = 1; i <= 20; i++) second.send(delivery(harness.address, 1000 + i))
      await second.close(300)
      assert.equal(second.counters().dropped.shutdown, 20)
      assert.equal(second.health().depth, 0)
      assertAccounted(second)
    })
  })
}
