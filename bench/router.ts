// Topic matching: qlobber (what aedes uses) against the engine's Router, cached and uncached, on the
// same seeded IoT workload (bench/workload.ts), interleaved in one process; match sets compared first.
import { Qlobber } from 'qlobber'
import { shipped } from './shipped.js'

const { Router } = await shipped<typeof import('../engine/runtime/router.js')>('engine/runtime/router.js')
import { collect, fmt, machine, median, quick } from './stats.js'
import { routerWorkload } from './workload.js'

const SIZES = quick ? [1_000, 10_000] : [1_000, 10_000, 100_000]
const RUNS = quick ? 3 : 5
/** Distinct topics: within the Router's cache (10,000), and five times past it. */
const TOPIC_POOLS = quick ? [5_000] : [5_000, 50_000]
const LOOKUPS = quick ? 200_000 : 1_000_000

interface Matcher { match: (topic: string) => readonly unknown[] }

function lookupsPerSecond (m: Matcher, topics: string[]): number {
  let sink = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < LOOKUPS; i++) sink += m.match(topics[i % topics.length]).length
  const ns = Number(process.hrtime.bigint() - start)
  if (sink < 0) console.log(sink)
  return LOOKUPS / (ns / 1e9)
}

function build<T> (make: () => T, add: (m: T, filter: string, i: number) => void, filters: string[]): { matcher: T, ms: number, heapMb: number } {
  collect()
  const before = process.memoryUsage().heapUsed
  const start = performance.now()
  const matcher = make()
  filters.forEach((f, i) => add(matcher, f, i))
  const ms = performance.now() - start
  collect()
  return { matcher, ms, heapMb: (process.memoryUsage().heapUsed - before) / 1024 / 1024 }
}

console.log(`# Router: qlobber vs Router (${machine()}; distinct topics looked up round-robin, ${fmt(LOOKUPS)} lookups a run, medians of ${RUNS} interleaved runs)`)
console.log('| filters | distinct topics | matches/lookup | qlobber lookups/s | Router, trie only | Router (trie + cache) | Router ÷ qlobber | build ms qlobber / Router | heap MB qlobber / Router |')
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const [n, pool] of SIZES.flatMap((size) => TOPIC_POOLS.map((p) => [size, p]))) {
  const { filters, topics } = routerWorkload(n, pool)
  const q = build(() => new Qlobber({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true }), (m, f, i) => m.add(f, i), filters)
  const r = build(() => new Router<number>(), (m, f, i) => m.add(f, i), filters)
  const uncached = new Router<number>(0)
  filters.forEach((f, i) => uncached.add(f, i))
  // Same answers first: every topic, same set of filter indexes.
  let matches = 0
  for (const t of topics) {
    const a = [...new Set(q.matcher.match(t) as number[])].sort((x, y) => x - y).join(',')
    const b = [...r.matcher.match(t)].sort((x, y) => x - y).join(',')
    if (a !== b) throw new Error(`match sets differ for ${t}: qlobber [${a}] vs Router [${b}]`)
    matches += r.matcher.match(t).length
  }
  const results: Record<'q' | 'u' | 'c', number[]> = { q: [], u: [], c: [] }
  for (let run = 0; run < RUNS; run++) {
    results.q.push(lookupsPerSecond(q.matcher, topics))
    results.u.push(lookupsPerSecond({ match: (t) => uncached.lookup(t) }, topics))
    results.c.push(lookupsPerSecond(r.matcher, topics))
  }
  const [mq, mu, mc] = [median(results.q), median(results.u), median(results.c)]
  console.log(`| ${fmt(n)} | ${fmt(pool)} | ${(matches / topics.length).toFixed(2)} | ${fmt(mq)} | ${fmt(mu)} (${(mu / mq).toFixed(2)}×) | ${fmt(mc)} | ${(mc / mq).toFixed(2)}× | ${q.ms.toFixed(0)} / ${r.ms.toFixed(0)} | ${q.heapMb.toFixed(1)} / ${r.heapMb.toFixed(1)} |`)
}
