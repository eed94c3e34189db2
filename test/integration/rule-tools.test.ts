// The rule author's tools through the built CLI: `signalbox test` (passing, failing with a diff, broken
// files, tests: inside a rules file, --watch) and `signalbox trace` (matching, filtered, erroring).
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { until } from '../helpers/latch.js'
import { cliPath, runCli, spawnTracked } from '../helpers/process.js'
import { tempDir } from '../helpers/signalbox.js'

const RULES = `version: 1
rules:
  - name: hot-room
    from: sensors/+room/temperature
    where: { ">": [{ var: payload.celsius }, 30] }
    set:
      room: { var: params.room }
      celsius: { var: payload.celsius }
    to:
      - mqtt: alerts/{room}/hot
`

function caseFile (celsius: number, expected: string): string {
  return `cases:
  - name: hot kitchen
    topic: sensors/kitchen/temperature
    payload: { celsius: ${celsius} }
    expect:
      - mqtt: alerts/kitchen/hot
        payload: ${expected}
`
}

describe('signalbox test', function () {
  this.timeout(30_000)

  it('passes the example rules shipped in fixtures/', () => {
    const r = runCli(['test', 'fixtures/rules', 'fixtures/sinks'])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /^9 of 9 cases passed$/m)
    assert.match(r.stdout, /^ {2}✓ a hot kitchen raises an alert in both scales$/m)
  })

  it('fails with exit 1 and a diff of expected (-) and actual (+) outputs', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'home.yaml'), RULES)
    writeFileSync(join(dir, 'home.test.yaml'), caseFile(31, '{ room: kitchen, celsius: 32 }') + `  - name: cool is quiet
    topic: sensors/hall/temperature
    payload: { celsius: 35 }
    expect: nothing
`)
    const r = runCli(['test', join(dir, 'home.yaml')])
    assert.equal(r.status, 1)
    assert.equal(r.stdout, [
      join(dir, 'home.test.yaml'),
      `  ✗ hot kitchen  (${join(dir, 'home.test.yaml')}:2)`,
      '      message sensors/kitchen/temperature {"celsius":31}',
      '    - mqtt alerts/kitchen/hot {"room":"kitchen","celsius":32}',
      '    + mqtt alerts/kitchen/hot {"room":"kitchen","celsius":31} qos 0',
      `  ✗ cool is quiet  (${join(dir, 'home.test.yaml')}:8)`,
      '      message sensors/hall/temperature {"celsius":35}',
      '      expected nothing',
      '    + mqtt alerts/hall/hot {"room":"hall","celsius":35} qos 0',
      '',
      '0 of 2 cases passed, 2 failed',
      ''
    ].join('\n'))
  })

  it('reports a broken test file with file:line:col and exits 1', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'home.yaml'), RULES)
    writeFileSync(join(dir, 'home.test.yaml'), 'cases:\n  - name: typo\n    topic: a/b\n    expct: nothing\n')
    const r = runCli(['test', dir])
    assert.equal(r.status, 1)
    assert.match(r.stdout, /home\.test\.yaml:2:5: error MISSING_FIELD: missing field 'expect'/)
    assert.match(r.stdout, /home\.test\.yaml:4:5: error UNKNOWN_FIELD: unknown field 'expct' \(did you mean 'expect'\?\)/)
  })

  it('runs tests: written inside a rules file', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'inline.yaml'), RULES + 'tests:\n' + caseFile(31, '{ room: kitchen, celsius: 31 }').replace('cases:\n', ''))
    const r = runCli(['test', join(dir, 'inline.yaml')])
    assert.equal(r.status, 0, r.stdout)
    assert.match(r.stdout, /^1 of 1 case passed$/m)
    assert.equal(runCli(['check', join(dir, 'inline.yaml')]).status, 0, 'check accepts tests: in a rules file')
  })

  it('says so when a rules file has no tests', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'lonely.yaml'), RULES)
    const r = runCli(['test', join(dir, 'lonely.yaml')])
    assert.equal(r.status, 1)
    assert.match(r.stdout, /no test cases for .*lonely\.yaml: add 'tests:' to it, or write lonely\.test\.yaml beside it/)
  })

  it('with --watch, runs again when a rules file is saved', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'home.yaml'), RULES.replace('celsius: { var: payload.celsius }', 'celsius: 0'))
    writeFileSync(join(dir, 'home.test.yaml'), caseFile(31, '{ room: kitchen, celsius: 31 }'))
    const proc = spawnTracked(process.execPath, [cliPath(), 'test', '--watch', dir])
    await until(() => proc.lines.items.includes('watching for changes (Ctrl-C to stop)'), 10_000, 'first run')
    assert.ok(proc.lines.items.includes('0 of 1 case passed, 1 failed'), proc.lines.items.join('\n'))
    writeFileSync(join(dir, 'home.yaml'), RULES)
    await until(() => proc.lines.items.includes('1 of 1 case passed'), 10_000, 'second run after the save')
    assert.ok(proc.lines.items.some((l) => /home\.yaml changed; running again$/.test(l)))
    proc.child.kill('SIGINT')
    assert.equal(await proc.exited, 0)
  })
})

describe('signalbox trace', function () {
  this.timeout(30_000)

  function trace (payload: string, topic = 'sensors/kitchen/temperature'): string {
    const r = runCli(['trace', '--rules', 'fixtures/rules/home.yaml', '--topic', topic, '--payload', payload])
    assert.equal(r.status, 0, r.stderr)
    return r.stdout
  }

  it('shows the matched rule with file:line, where, set and the rendered output', () => {
    const out = trace('{"celsius":31}')
    assert.match(out, /^ {2}rule hot-room {2}fixtures\/rules\/home\.yaml:5 {2}\(from sensors\/\+room\/temperature\)$/m)
    assert.match(out, /^ {4}params {2}\{"room":"kitchen"\}$/m)
    assert.match(out, /^ {4}where {3}true → passed$/m)
    assert.match(out, /^ {4}set {5}\{"room":"kitchen","celsius":31,"fahrenheit":87\.80000000000001\}$/m)
    assert.match(out, /^ {4}output {2}mqtt alerts\/\{room\}\/hot → alerts\/kitchen\/hot {2}republished on the embedded broker {2}\(fixtures\/rules\/home\.yaml:14\)$/m)
    assert.match(out, /^1 output:$/m)
  })

  it('shows where a message is filtered', () => {
    const out = trace('{"celsius":12}')
    assert.match(out, /^ {4}where {3}false → filtered: the rule stops here$/m)
    assert.match(out, /^no outputs$/m)
  })

  it('shows an error and the dead letter it causes', () => {
    const out = trace('not json')
    assert.match(out, /^ {4}error {3}PAYLOAD_NOT_JSON: payload is not JSON, and the rule reads payload fields → dead letter$/m)
    assert.match(out, /^ {2}dead letter \$signalbox\/dead-letter\/hot-room /m)
  })

  it('shows the row a message would write to a PostgreSQL table (no database needed)', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'r.yaml'), 'version: 1\nsinks:\n  db: { type: postgres, url: "postgres://u@127.0.0.1:1/x" }\nrules:\n  - name: readings\n    from: sensors/+room/temperature\n    set: { celsius: { var: payload.c } }\n    to: [{ sink: db, table: readings, time: { var: payload.ts } }]\n')
    const r = runCli(['trace', '-r', join(dir, 'r.yaml'), '-t', 'sensors/kitchen/temperature', '-m', '{"c":21.5,"ts":1700000000}'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /^ {2}sink db readings \{"celsius":21\.5\} {2}\(rule readings, qos 0\)\n {6}row \{"time":"2023-11-14T22:13:20\.000Z","celsius":21\.5,"room":"kitchen"\}$/m)
  })

  it('shows a refused output and a message no rule matches', () => {
    assert.match(trace('', 'nowhere/at/all'), /^ {2}matched no rule$/m)
    const dir = tempDir()
    writeFileSync(join(dir, 'r.yaml'), 'version: 1\nrules:\n  - name: by-field\n    from: in/+id\n    to: [{ mqtt: "out/{payload.room}" }]\n')
    const r = runCli(['trace', '-r', join(dir, 'r.yaml'), '-t', 'in/1', '-m', '{"room":"a/b"}'])
    assert.match(r.stdout, /error {3}TOPIC_REFUSED: output 'out\/\{payload\.room\}' refused: \{payload\.room\} holds '\/'/)
  })
})
