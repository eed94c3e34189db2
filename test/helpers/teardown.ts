/** Every resource a test starts registers its close here; the root afterEach closes them, newest first. */
const pending: Array<() => Promise<void> | void> = []

export function onTeardown (close: () => Promise<void> | void): void {
  pending.push(close)
}

export async function runTeardown (): Promise<void> {
  while (pending.length > 0) {
    const close = pending.pop()!
    try {
      await close()
    } catch (err) {
      console.error('teardown failed:', err)
    }
  }
}
