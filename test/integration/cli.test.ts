// The built CLI as a child process: check, schema, and run end to end with mosquitto_pub / mosquitto_sub.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { mosquittoPub, mosquittoPubStatus, mosquittoSub, startRun } from '../helpers/cli.js'
import { until } from '../helpers/latch.js'
import { runCli } from '../helpers/process.js'
import { projectRoot } from '../helpers/paths.js'
import { tempDir } from '../helpers/signalbox.js'
import { onTeardown } from '../helpers/teardown.js'

describe('cli', () => {
  describe('check', () => {
    it('exits 0 on a clean file and says what it loaded', () => {
      const r = runCli(['check', 'fixtures/rules/home.yaml'])
      assert.equal(r.status, 0, r.stdout + r.stderr)
      assert.match(r.stdout, /^ok: 3 rules in 1 file$/m)
    })

    it('prints every problem with file:line:col and a caret, and exits 1', () => {
      const r = runCli(['check', 'fixtures/invalid/unknown-field.yaml', 'fixtures/invalid/bad-filter.yaml'])
      assert.equal(r.status, 1)
      assert.match(r.stdout, /^fixtures\/invalid\/unknown-field\.yaml:4:5: error UNKNOWN_FIELD: unknown field 'form' \(did you mean 'from'\?\)/m)
      assert.match(r.stdout, /^4 \| {5}form: sensors\/\+room\/temperature\n {2}\| {5}\^$/m)
      assert.match(r.stdout, /^fixtures\/invalid\/bad-filter\.yaml:4:13: error BAD_FILTER: invalid filter 'a\/#\/b'/m)
      assert.match(r.stdout, /^8 errors$/m)
      assert.doesNotMatch(r.stdout + r.stderr, /at .*\.js:\d+/, 'no stack trace')
    })

    it('exits 0 with only warnings, and prints them', () => {
      const dir = tempDir()
      const file = join(dir, 'warn.yaml')
      writeFileSync(file, 'version: 1\nrules:\n  - name: loops\n    from: a/#rest\n    to: [{ mqtt: "a/b/{rest}" }]\n')
      const r = runCli(['check', file])
      assert.equal(r.status, 0)
      assert.match(r.stdout, /warn\.yaml:5:18: warning SELF_MATCH/)
      assert.match(r.stdout, /ok: 1 rule in 1 file, 1 warning/)
    })

    it('names a missing file', () => {
      const r = runCli(['check', 'no/such.yaml'])
      assert.equal(r.status, 1)
      assert.match(r.stdout, /^no\/such\.yaml:1:1: error FILE_UNREADABLE: cannot read rules file: no such file/m)
    })
  })

  describe('schema', () => {
    it('prints the checked-in rules/schema.json (regenerate with npm run schema)', () => {
      const r = runCli(['schema'])
      assert.equal(r.status, 0)
      assert.equal(r.stdout, readFileSync(join(projectRoot, 'rules', 'schema.json'), 'utf8'))
    })
  })

  describe('check --config', () => {
    /** A config file with four problems only the checks beyond its schema, or the schema, find; its rules have one more. */
    const brokenConfig = (dir: string): string => {
      writeFileSync(join(dir, 'signalbox.yaml'), 'listen: { port: 1883 }\nlisteners:\n  - { type: tcp, port: 0 }\nshare: "a/b"\nhttp: nine\nsources:\n  - url: ftp://x\nrules: [rules.yaml]\n')
      writeFileSync(join(dir, 'rules.yaml'), 'version: 1\nrules:\n  - name: a\n    from: in/+x\n    to: [{ mqtt: "out/{y}" }]\n')
      return join(dir, 'signalbox.yaml')
    }
    const codes = (out: string): string[] => [...out.matchAll(/^(\S+):(\d+):(\d+): error (\w+)/gm)].map((m) => `${m[1].split('/').pop()}:${m[2]}:${m[3]} ${m[4]}`)

    it('checks a config file and the rules it names, every problem at once, with file:line:col', () => {
      const config = brokenConfig(tempDir())
      const r = runCli(['check', '--config', config])
      assert.equal(r.status, 1, r.stderr)
      assert.deepEqual(codes(r.stdout), ['signalbox.yaml:1:1 BAD_VALUE', 'signalbox.yaml:4:8 BAD_VALUE', 'signalbox.yaml:5:7 BAD_VALUE', 'signalbox.yaml:7:10 BAD_VALUE', 'rules.yaml:5:23 UNKNOWN_CAPTURE'])
      assert.match(r.stdout, /^5 errors$/m)
    })

    it('says so when a config file is given as a rules file', () => {
      const config = brokenConfig(tempDir())
      const r = runCli(['check', config])
      assert.equal(r.status, 1)
      assert.match(r.stdout, /signalbox\.yaml looks like a config file, not a rules file: check it with `signalbox check --config .*signalbox\.yaml`/)
    })

    it('run -c reports every config problem at once too', () => {
      const config = brokenConfig(tempDir())
      const r = runCli(['run', '-c', config])
      assert.equal(r.status, 1)
      assert.deepEqual(codes(r.stderr), ['signalbox.yaml:1:1 BAD_VALUE', 'signalbox.yaml:4:8 BAD_VALUE', 'signalbox.yaml:5:7 BAD_VALUE', 'signalbox.yaml:7:10 BAD_VALUE'])
    })
  })

  describe('run', () => {
    it('routes a mosquitto_pub message to mosquitto_sub, dead-letters garbage, and exits 0 on SIGTERM', async () => {
      const { proc, port } = await startRun(['fixtures/rules/home.yaml'])
      const sub = await mosquittoSub(port, ['alerts/#', '$signalbox/dead-letter/#'])
      mosquittoPub(port, 'sensors/kitchen/temperature', '{"celsius":31}')
      mosquittoPub(port, 'sensors/kitchen/temperature', 'garbage')
      mosquittoPub(port, 'sensors/hall/sofa/battery', '{"percent":9}')
      const lines = await sub.wait(3, 10000)
      assert.ok(lines.includes('alerts/kitchen/hot {"room":"kitchen","celsius":31,"fahrenheit":87.80000000000001}'), lines.join('\n'))
      assert.ok(lines.includes('alerts/hall/battery/sofa {"device":"sofa","percent":9}'), lines.join('\n'))
      assert.ok(lines.some((l) => l.startsWith('$signalbox/dead-letter/hot-room {"rule":"hot-room","code":"PAYLOAD_NOT_JSON"')), lines.join('\n'))
      proc.child.kill('SIGTERM')
      assert.equal(await proc.exited, 0)
      assert.match(proc.stderr(), /"msg":"stopped"/)
    })

    it('refuses an MQTT 5 client and logs why, once per address; MQTT 3.1.1 clients go on', async () => {
      const { proc, port } = await startRun(['fixtures/rules/home.yaml'])
      const v5 = (): number | null => mosquittoPubStatus(port, 'sensors/kitchen/temperature', '{"celsius":31}', ['-V', 'mqttv5'])
      assert.notEqual(v5(), 0, 'mosquitto_pub -V mqttv5 was refused')
      assert.notEqual(v5(), 0)
      const hint = /"level":40,.*connection refused: the embedded broker speaks MQTT 3\.1\.1 and 3\.1, not MQTT 5/
      await until(() => hint.test(proc.stderr()), 10000, 'the refusal logged')
      assert.equal(proc.stderr().split('\n').filter((l) => hint.test(l)).length, 1, 'warned once for the address')
      const sub = await mosquittoSub(port, ['alerts/#'])
      mosquittoPub(port, 'sensors/kitchen/temperature', '{"celsius":31}')
      assert.deepEqual(await sub.wait(1, 10000), ['alerts/kitchen/hot {"room":"kitchen","celsius":31,"fahrenheit":87.80000000000001}'])
    })

    it('reloads rules on save, keeps them on a broken save (naming file:line:col), and recovers on the next save', async () => {
      const dir = tempDir()
      const file = join(dir, 'echo.yaml')
      const echo = (v: string, to = 'out/{id}'): string => `version: 1\nrules:\n  - name: echo\n    from: in/+id\n    set: { v: ${v} }\n    to: [{ mqtt: "${to}" }]\n`
      writeFileSync(file, echo('one'))
      const { proc, port } = await startRun([file])
      const sub = await mosquittoSub(port, ['out/#'])
      const reloads = (what: string): number => proc.stderr().split('\n').filter((l) => l.includes(`"msg":"${what}`)).length
      mosquittoPub(port, 'in/1', 'x')
      writeFileSync(file, echo('two'))
      await until(() => reloads('rules reloaded') === 1, 10000, 'reload on save')
      assert.match(proc.stderr(), /"unchangedFiles":0,/, 'the changed file was read again')
      mosquittoPub(port, 'in/2', 'x')
      writeFileSync(file, echo('three', 'out/{nope}'))
      await until(() => reloads('reload failed') === 1, 10000, 'failed reload')
      assert.match(proc.stderr(), /echo\.yaml:6:\d+: error UNKNOWN_CAPTURE/)
      mosquittoPub(port, 'in/3', 'x')
      writeFileSync(file, echo('four'))
      await until(() => reloads('rules reloaded') === 2, 10000, 'recovery')
      mosquittoPub(port, 'in/4', 'x')
      assert.deepEqual(await sub.wait(4, 10000), ['out/1 {"v":"one"}', 'out/2 {"v":"two"}', 'out/3 {"v":"two"}', 'out/4 {"v":"four"}'])
      proc.child.kill('SIGTERM')
      assert.equal(await proc.exited, 0)
    })

    it('with --no-watch, reloads only on SIGHUP', async () => {
      const dir = tempDir()
      const file = join(dir, 'echo.yaml')
      const echo = (v: string): string => `version: 1\nrules:\n  - name: echo\n    from: in/+id\n    set: { v: ${v} }\n    to: [{ mqtt: "out/{id}" }]\n`
      writeFileSync(file, echo('one'))
      const { proc, port } = await startRun(['--no-watch', file])
      const sub = await mosquittoSub(port, ['out/#'])
      writeFileSync(file, echo('two'))
      mosquittoPub(port, 'in/1', 'x')
      assert.deepEqual(await sub.wait(1, 10000), ['out/1 {"v":"one"}'])
      proc.child.kill('SIGHUP')
      await until(() => proc.stderr().includes('"reason":"SIGHUP"'), 10000, 'reload on SIGHUP')
      mosquittoPub(port, 'in/2', 'x')
      assert.deepEqual(await sub.wait(2, 10000), ['out/1 {"v":"one"}', 'out/2 {"v":"two"}'])
      proc.child.kill('SIGTERM')
      assert.equal(await proc.exited, 0)
    })

    it('writes a rule\'s JsonLogic log through the logger (stderr, naming the rule), never to stdout', async () => {
      const dir = tempDir()
      writeFileSync(join(dir, 'rules.yaml'), 'version: 1\nrules:\n  - name: noisy\n    from: in/+id\n    where: { log: { var: payload.v } }\n    to: [{ mqtt: "out/{id}" }]\n')
      const { proc } = await startRun([join(dir, 'rules.yaml')])
      const port = Number(/listening on [^ "]+:(\d+)/.exec(proc.stderr())![1])
      mosquittoPub(port, 'in/1', '{"v":"seen"}')
      await until(() => /"msg":"rule log"/.test(proc.stderr()), 10000, 'the rule log line')
      const line = JSON.parse(proc.stderr().split('\n').find((l) => l.includes('"msg":"rule log"'))!) as { rule: string, value: unknown }
      assert.deepEqual([line.rule, line.value], ['noisy', 'seen'])
      assert.deepEqual(proc.lines.items, [], 'nothing on stdout')
    })

    it('says clearly that the port is taken, and exits 1', async () => {
      const server = createServer()
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      onTeardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
      const port = (server.address() as { port: number }).port
      const r = runCli(['run', '--port', String(port), 'fixtures/rules/home.yaml'])
      assert.equal(r.status, 1)
      assert.equal(r.stderr.trim().split('\n').pop(), `signalbox: PORT_IN_USE: cannot listen on 127.0.0.1:${port}: the port is already in use (another broker running? pick another with --port)`)
    })

    it('refuses to start with broken rules, naming file:line:col', () => {
      const r = runCli(['run', '--port', '0', 'fixtures/invalid/unknown-capture.yaml'])
      assert.equal(r.status, 1)
      assert.match(r.stderr, /^fixtures\/invalid\/unknown-capture\.yaml:6:22: error UNKNOWN_CAPTURE/m)
      assert.match(r.stderr, /signalbox: rules not loaded \(2 errors\)/)
    })

    it('takes the listener and rules from --config, with flags winning', async () => {
      const dir = tempDir()
      const config = join(dir, 'signalbox.yaml')
      writeFileSync(config, `listen: { host: 127.0.0.1, port: 1 }\nrules: [${JSON.stringify(join(projectRoot, 'fixtures', 'rules'))}]\nmax_hops: 3\n`)
      const { proc, port } = await startRun(['--config', config])
      assert.notEqual(port, 1)
      const sub = await mosquittoSub(port, ['alerts/#'])
      mosquittoPub(port, 'sensors/attic/temperature', '{"celsius":45}')
      const [line] = await sub.wait(1, 10000)
      assert.match(line, /^alerts\/attic\/hot /)
      proc.child.kill('SIGINT')
      assert.equal(await proc.exited, 0)
    })

    it('reports a bad config file with file:line:col', () => {
      const dir = tempDir()
      const config = join(dir, 'bad.yaml')
      writeFileSync(config, 'listen:\n  prot: 1883\nmax_hops: 0\n')
      const r = runCli(['run', '--config', config])
      assert.equal(r.status, 1)
      assert.match(r.stderr, /bad\.yaml:2:3: error UNKNOWN_FIELD: unknown field 'prot' \(did you mean 'port'\?\)/)
      assert.match(r.stderr, /bad\.yaml:3:11: error BAD_VALUE|bad\.yaml:3:11: error SCHEMA/)
    })
  })
})
