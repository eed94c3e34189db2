/**
 * Long jobs on the main thread (compiling a large rule set, building its router) run in slices: a
 * generator yields once it has held the thread for SLICE_MS, and whoever drives it lets the event
 * loop turn before going on, so the broker keeps serving meanwhile.
 */
import { performance } from 'node:perf_hooks'

/** How long one slice may hold the thread, ms: well under the 50 ms a delivery may wait for a reload. */
export const SLICE_MS = 4

/** When a slice ends: by the clock (Slice), or as a test says. */
export interface Slicing {
  readonly due: boolean
  restart: () => void
}

export class Slice implements Slicing {
  private started = performance.now()

  /** Whether this slice has used its time; the caller yields, then calls restart() when resumed. */
  get due (): boolean {
    return performance.now() - this.started >= SLICE_MS
  }

  restart (): void {
    this.started = performance.now()
  }
}
