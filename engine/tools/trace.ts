/**
 * `signalbox trace`: one message through the rules, every step shown: the rules the router
 * matched (with file:line), their captures, what `where` returned, what `set` built, each
 * rendered output and any refusal or error; then the same for each message a rule republished.
 */
import type { RuleSet } from '../../rules/compile/ruleset.js'
import type { EngineEvent } from '../runtime/engine.js'
import { OfflineRunner, type OfflineMessage, type OfflineOutput } from './offline.js'

export interface TraceResult {
  text: string
  outputs: OfflineOutput[]
}

export function traceMessage (ruleSet: RuleSet, msg: OfflineMessage, options: { maxHops?: number, deadLetterPrefix?: string } = {}): TraceResult {
  const lines: string[] = []
  const runner = new OfflineRunner(ruleSet, { ...options, observe: (event) => lines.push(...describe(event)) })
  lines.push(`message ${msg.topic} ${preview(msg.payload)} (qos ${msg.qos}${msg.retain ? ', retained' : ''}${msg.clientId !== null ? `, client ${msg.clientId}` : ''})`)
  const outputs = runner.run(msg)
  lines.push('', outputs.length === 0 ? 'no outputs' : `${outputs.length} output${outputs.length === 1 ? '' : 's'}:`)
  for (const o of outputs) lines.push(`  ${describeOutput(o)}`)
  return { text: lines.join('\n') + '\n', outputs }
}

function describe (event: EngineEvent): string[] {
  switch (event.kind) {
    case 'message': {
      const head = event.hops === 0 ? [] : ['', `republished ${event.topic} (hop ${event.hops})`]
      if (event.rules.length === 0) return [...head, '  matched no rule']
      return [...head, `  matched ${event.rules.length} rule${event.rules.length === 1 ? '' : 's'}: ${event.rules.map((r) => r.name).join(', ')}`]
    }
    case 'rule': {
      const { file, line } = event.rule.source
      const params = Object.keys(event.params).length > 0 ? [`    params  ${JSON.stringify(event.params)}`] : []
      return [`  rule ${event.rule.name}  ${file}:${line}  (from ${event.rule.pattern.source})`, ...params]
    }
    case 'where':
      return [`    where   ${JSON.stringify(event.result) ?? 'undefined'} → ${event.passed ? 'passed' : 'filtered: the rule stops here'}`]
    case 'set':
      return [`    set     ${preview(event.payload)}`]
    case 'output': {
      const { file, line } = event.output.source
      const to = event.output.kind === 'mqtt' ? `mqtt ${event.output.template}` : `sink ${event.output.sink} ${event.output.template}`
      const outcome = event.outcome === 'published' ? 'republished on the embedded broker' : event.outcome === 'sent' ? `sent to sink '${event.output.kind === 'sink' ? event.output.sink : ''}'` : 'dropped: max_hops reached'
      return [`    output  ${to} → ${event.address}  ${outcome}  (${file}:${line})`]
    }
    case 'failure':
      return [`    error   ${event.code}: ${event.reason}${event.rule.onError === 'drop' ? ' (on_error: drop)' : ' → dead letter'}`]
  }
}

function describeOutput (o: OfflineOutput): string {
  const where = o.kind === 'sink' ? `sink ${o.sink ?? ''} ${o.address}` : `${o.kind === 'dead_letter' ? 'dead letter' : 'mqtt'} ${o.address}`
  const written = o.written === undefined ? '' : `\n      ${o.written}`
  return `${where} ${preview(o.payload)}  (rule ${o.rule}, qos ${o.qos}${o.retain ? ', retained' : ''})${written}`
}

/** A payload as text when it is valid UTF-8, else as a byte count. */
export function preview (payload: Buffer): string {
  const text = payload.toString('utf8')
  if (!Buffer.from(text, 'utf8').equals(payload)) return `<${payload.length} bytes, not UTF-8>`
  return text === '' ? '<empty>' : text
}
