/** An Engine over a rules file written from text, with its publishes collected instead of sent. */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type { OutMessage } from '../../rules/model/message.js'
import { Engine, type EngineOptions } from '../../engine/runtime/engine.js'
import { loadRuleSet, type RuleSet } from '../../rules/compile/ruleset.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'

/** The rule set a rules file of this text loads (it must load without errors). */
export function ruleSetFor (yaml: string): RuleSet {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-engine-'))
  try {
    writeFileSync(join(dir, 'rules.yaml'), yaml)
    const loaded = loadRuleSet([join(dir, 'rules.yaml')], { sinkSpecs: SINK_SPECS })
    assert.ok(loaded.ok, loaded.ok ? '' : JSON.stringify(loaded.problems))
    return loaded.ruleSet
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export function engineFor (yaml: string, options: Partial<EngineOptions> = {}): { engine: Engine, published: OutMessage[] } {
  const published: OutMessage[] = []
  const engine = new Engine(ruleSetFor(yaml), { publish: (out, done) => { published.push(out); done() }, logger: pino({ level: 'silent' }), maxHops: 8, deadLetterPrefix: '$dl', ...options })
  return { engine, published }
}
