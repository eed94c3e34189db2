/** What every source shares: its name, connection state with the time it changed, counters, and the log line of each change. */
import {
  createSourceCounters, redactUrl,
  type SourceContext, type SourceCounters, type SourceHealth, type SourceSettings, type SourceState
} from './source.js'

export abstract class SourceBase {
  readonly name: string
  protected state: SourceState = 'connecting'
  private since = Date.now()
  protected lastError: string | undefined
  protected readonly stats: SourceCounters = createSourceCounters()

  constructor (protected readonly settings: SourceSettings, protected readonly context: SourceContext) {
    this.name = redactUrl(settings.url)
  }

  /** Filters subscribed now. */
  protected abstract subscriptionCount (): number

  health (): SourceHealth {
    return { state: this.state, since: this.since, lastError: this.lastError, subscriptions: this.subscriptionCount() }
  }

  counters (): SourceCounters {
    return { ...this.stats }
  }

  /** A method, not a field test, so loops that await see a close that happened meanwhile. */
  protected isClosed (): boolean {
    return this.state === 'closed'
  }

  /** Changes state (never out of closed) and logs the change once. */
  protected setState (state: SourceState, reason?: string): void {
    if (this.state === state || this.state === 'closed') return
    const previous = this.state
    this.state = state
    this.since = Date.now()
    if (reason !== undefined) this.lastError = reason
    if (state === 'up') this.context.logger.info({ source: this.name, from: previous }, 'source connected')
    else if (state === 'down') this.context.logger.warn({ source: this.name, from: previous, err: reason }, 'source disconnected; reconnecting')
  }
}
