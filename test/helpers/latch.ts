/** Wait on events, not time: a latch that resolves after `count` arrivals or fails after `ms`. */
export class Latch<T> {
  readonly items: T[] = []
  private waiters: Array<{ count: number, resolve: (items: T[]) => void }> = []

  push (item: T): void {
    this.items.push(item)
    this.waiters = this.waiters.filter((w) => {
      if (this.items.length < w.count) return true
      w.resolve(this.items)
      return false
    })
  }

  /** Resolves once `count` items have arrived; rejects with what did arrive after `ms`. */
  wait (count: number, ms = 5000): Promise<T[]> {
    if (this.items.length >= count) return Promise.resolve(this.items)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${count} items; got ${this.items.length}: ${JSON.stringify(this.items).slice(0, 500)}`)), ms)
      this.waiters.push({ count, resolve: (items) => { clearTimeout(timer); resolve(items) } })
    })
  }
}

/** Polls a condition (maybe async, e.g. an HTTP request) until it holds; for counters that have no event of their own. */
export async function until (condition: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
