// Reading /metrics in tests: Prometheus' text format as sample → value, and the address of the
// endpoint a spawned `signalbox run --http 127.0.0.1:0` logged.
import { until } from './latch.js'

/** Prometheus text format → sample name with labels → value. */
export function parseMetrics (text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    samples.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return samples
}

/** The samples `url`/metrics serves now. */
export async function scrape (url: string): Promise<Map<string, number>> {
  return parseMetrics(await (await fetch(`${url}/metrics`)).text())
}

/** The monitoring endpoint's URL, once the process (whose stderr this reads) has logged it. */
export async function monitoringUrl (stderr: () => string): Promise<string> {
  await until(() => /monitoring endpoint listening/.test(stderr()), 10_000, 'the monitoring endpoint\'s log line')
  return /"url":"(http:\/\/[^"]+)"/.exec(stderr())![1]
}
