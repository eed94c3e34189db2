// A value refused by a schema `pattern` is told what it may hold in words of its own setting, not
// the rule-name sentence every pattern used to print.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SINK_SPECS } from '../../adapters/sink-specs.js'
import { startError } from '../../engine/broker/listeners.js'
import { loadConfig } from '../../engine/service/config.js'
import { loadRuleSet } from '../../rules/compile/ruleset.js'

describe('pattern problems', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'signalbox-pattern-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  const configProblems = (yaml: string): string[] => {
    writeFileSync(join(dir, 'signalbox.yaml'), yaml)
    const loaded = loadConfig(join(dir, 'signalbox.yaml'))
    return loaded.ok ? [] : loaded.problems.map((p) => `${p.line}:${p.col} ${p.code} ${p.message}`)
  }

  it('says what each setting may hold: share, dead_letter_prefix, a listener path, a rule name', () => {
    assert.deepEqual(configProblems('share: "a/b"\n'), ['1:8 BAD_VALUE share "a/b" may not hold \'/\', \'+\', \'#\' or whitespace (it names a share group)'])
    assert.deepEqual(configProblems('dead_letter_prefix: "dl/+"\n'), ['1:21 BAD_VALUE dead_letter_prefix "dl/+" may not hold \'+\', \'#\' or a NUL character (it is a topic prefix)'])
    assert.deepEqual(configProblems('listeners:\n  - { type: ws, port: 0, path: mqtt }\n'), ['2:32 BAD_VALUE listeners[0].path "mqtt" must start with \'/\''])
    writeFileSync(join(dir, 'rules.yaml'), 'version: 1\nrules:\n  - name: -bad\n    from: a\n    to: [{ mqtt: b }]\n')
    const rules = loadRuleSet([join(dir, 'rules.yaml')], { sinkSpecs: SINK_SPECS })
    assert.ok(!rules.ok)
    assert.deepEqual(rules.problems.map((p) => p.message), ['rules[0].name "-bad" may hold only letters, digits, \'_\', \'.\' and \'-\', and must start with a letter or digit'])
  })
})

describe('start-up errors', () => {
  it('names the likely Mosquitto service when an MQTT port is taken, and says what to do', () => {
    const inUse = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' })
    assert.equal(startError(inUse, { type: 'tcp', host: '127.0.0.1', port: 1883 }).message,
      'cannot listen on 127.0.0.1:1883: the port is already in use, likely by a Mosquitto service (Debian starts one when the package is installed: `sudo systemctl stop mosquitto`), or pick another port with --port')
    assert.equal(startError(inUse, { type: 'tcp', host: '127.0.0.1', port: 5000 }).message,
      'cannot listen on 127.0.0.1:5000: the port is already in use (another broker running? pick another with --port)')
  })
})
