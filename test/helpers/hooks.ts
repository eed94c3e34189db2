/** Root hooks (loaded by .mocharc.json): close whatever each test started, even when it failed. */
import { runTeardown } from './teardown.js'

export const mochaHooks = {
  async afterEach (): Promise<void> {
    await runTeardown()
  }
}
