/**
 * Deterministic (seeded) workloads for the benchmarks: an IoT site's topics and the filters rules
 * would subscribe with.
 *
 * Topics are `s<site>/a<area>/l<line>/m<machine>/<metric>`, some with 1–3 more levels (5–8 in all).
 * Filters: 60 % exact topics, 25 % with one level replaced by `+`, 15 % a 4–5 level prefix (a machine) and `#`.
 * Lookups cycle through a fixed pool of topics (the site's sensors publishing again and again),
 * nine in ten made to match a filter, one in ten matching nothing.
 */

/** mulberry32: a small seeded PRNG, so every run generates the same workload. */
export function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const METRICS = ['temperature', 'humidity', 'pressure', 'vibration', 'current', 'voltage', 'status', 'battery']

export interface RouterWorkload {
  filters: string[]
  /** Distinct topics looked up, in order, again and again. */
  topics: string[]
}

export function routerWorkload (filterCount: number, topicCount: number, seed = 42): RouterWorkload {
  const rnd = random(seed)
  const pick = (n: number): number => Math.floor(rnd() * n)
  // The site grows with the rule count, so filters stay mostly distinct.
  const machines = Math.max(10, Math.ceil(filterCount / 40))
  const device = (): string[] => [`s${pick(4)}`, `a${pick(8)}`, `l${pick(8)}`, `m${pick(machines)}`, METRICS[pick(METRICS.length)]]
  const filters: string[] = []
  for (let i = 0; i < filterCount; i++) {
    const levels = device()
    const extra = pick(4)
    for (let e = 0; e < extra; e++) levels.push(`x${pick(3)}`)
    const form = rnd()
    if (form < 0.6) filters.push(levels.join('/'))
    else if (form < 0.85) { levels[1 + pick(4)] = '+'; filters.push(levels.join('/')) } else filters.push([...levels.slice(0, 4 + pick(2)), '#'].join('/'))
  }
  const topics: string[] = []
  for (let i = 0; i < topicCount; i++) {
    if (rnd() < 0.1) { topics.push(`unknown/${pick(1000)}/${device().join('/')}`); continue }
    const filter = filters[pick(filters.length)].split('/')
    const topic: string[] = []
    for (const level of filter) {
      if (level === '+') topic.push(`v${pick(5)}`)
      else if (level === '#') { const more = pick(3); for (let m = 0; m < more; m++) topic.push(`t${pick(4)}`) } else topic.push(level)
    }
    topics.push(topic.join('/'))
  }
  return { filters, topics }
}
