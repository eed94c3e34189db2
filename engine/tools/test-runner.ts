/**
 * Runs rule test suites offline and reports each failing case as a diff: `-` for an expected
 * output that did not come, `+` for an output that came unexpected.
 */
import { SINK_SPECS } from '../../adapters/sink-specs.js'
import { isDeepStrictEqual } from 'node:util'
import { dirname, isAbsolute, relative } from 'node:path'
import { formatProblem } from '../../rules/check/problems.js'
import { loadRuleSet } from '../../rules/compile/ruleset.js'
import { OfflineRunner, type OfflineOutput } from './offline.js'
import type { Expectation, RuleTestCase, RuleTestSuite } from './rule-tests.js'
import { preview } from './trace.js'

export interface TestReport {
  passed: number
  failed: number
  /** Suites whose rules did not load. */
  broken: number
  text: string
}

export function runSuites (suites: RuleTestSuite[], options: { maxHops?: number, deadLetterPrefix?: string } = {}): TestReport {
  const report: TestReport = { passed: 0, failed: 0, broken: 0, text: '' }
  const lines: string[] = []
  for (const suite of suites) {
    lines.push(suite.file)
    const loaded = loadRuleSet(suite.rulePaths, { sinkSpecs: SINK_SPECS })
    if (!loaded.ok) {
      report.broken++
      lines.push('  rules do not load:', ...loaded.problems.map((p) => indent(formatProblem(p), 4)))
      continue
    }
    const runner = new OfflineRunner(loaded.ruleSet, options)
    const base = dirname(suite.file)
    for (const c of suite.cases) {
      const actual = runner.run({ topic: c.topic, payload: c.payload, qos: c.qos, retain: c.retain, clientId: c.clientId, time: c.time })
      const { missing, unexpected } = compare(c, actual)
      if (missing.length === 0 && unexpected.length === 0) {
        report.passed++
        lines.push(`  ✓ ${c.name}`)
        continue
      }
      report.failed++
      lines.push(`  ✗ ${c.name}  (${c.at})`, `      message ${c.topic} ${preview(c.payload)}`)
      if (c.expect.length === 0) lines.push('      expected nothing')
      for (const e of missing) lines.push(`    - ${describeExpectation(e, base)}`)
      for (const o of unexpected) lines.push(`    + ${describeOutput(o, base)}`)
    }
  }
  const total = report.passed + report.failed
  lines.push('', `${report.passed} of ${total} case${total === 1 ? '' : 's'} passed${report.failed > 0 ? `, ${report.failed} failed` : ''}${report.broken > 0 ? `; ${report.broken} file${report.broken === 1 ? '' : 's'} with rules that do not load` : ''}`)
  report.text = lines.join('\n') + '\n'
  return report
}

/** Pairs each expectation with the first output it fits; what is left on either side is the diff. */
function compare (c: RuleTestCase, actual: OfflineOutput[]): { missing: Expectation[], unexpected: OfflineOutput[] } {
  const left = [...actual]
  const missing: Expectation[] = []
  for (const e of c.expect) {
    const i = left.findIndex((o) => fits(e, o))
    if (i < 0) missing.push(e)
    else left.splice(i, 1)
  }
  return { missing, unexpected: left }
}

function fits (e: Expectation, o: OfflineOutput): boolean {
  if (e.kind !== o.kind) return false
  if (e.kind === 'mqtt' && o.address !== e.target) return false
  if (e.kind === 'sink' && (o.sink !== e.target || (e.address !== undefined && o.address !== e.address))) return false
  if (e.kind === 'dead_letter') {
    if (o.rule !== e.target) return false
    if (e.code !== undefined && (parseJson(o.payload) as { code?: string } | undefined)?.code !== e.code) return false
  }
  if (e.qos !== undefined && o.qos !== e.qos) return false
  if (e.retain !== undefined && o.retain !== e.retain) return false
  if (e.payload !== undefined) {
    if ('text' in e.payload) return o.payload.toString('utf8') === e.payload.text
    return isDeepStrictEqual(parseJson(o.payload), e.payload.json)
  }
  return true
}

function parseJson (payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'))
  } catch {
    return undefined
  }
}

function describeExpectation (e: Expectation, base: string): string {
  const head = e.kind === 'mqtt'
    ? `mqtt ${e.target}`
    : e.kind === 'sink' ? `sink ${e.target}${e.address !== undefined ? ' ' + shown(e.address, base) : ''}` : `dead letter from ${e.target}${e.code !== undefined ? ` (${e.code})` : ''}`
  const payload = e.payload === undefined ? '' : ' ' + ('text' in e.payload ? e.payload.text : JSON.stringify(e.payload.json))
  return `${head}${payload}${e.qos !== undefined ? ` qos ${e.qos}` : ''}${e.retain === true ? ' retained' : ''}`
}

function describeOutput (o: OfflineOutput, base: string): string {
  if (o.kind === 'dead_letter') {
    const letter = parseJson(o.payload) as { code?: string, reason?: string } | undefined
    return `dead letter from ${o.rule} (${letter?.code ?? '?'}: ${letter?.reason ?? ''})`
  }
  const head = o.kind === 'mqtt' ? `mqtt ${o.address}` : `sink ${o.sink ?? ''} ${shown(o.address, base)}`
  return `${head} ${preview(o.payload)} qos ${o.qos}${o.retain ? ' retained' : ''}${o.written === undefined ? '' : ` → ${o.written}`}`
}

/** File paths are shown relative to the test file, as its expectations write them. */
function shown (address: string, base: string): string {
  return isAbsolute(address) ? relative(base, address) : address
}

function indent (text: string, n: number): string {
  return text.split('\n').map((l) => ' '.repeat(n) + l).join('\n')
}
