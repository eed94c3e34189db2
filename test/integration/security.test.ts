// The embedded broker's security through `signalbox run --config`, with real clients: TLS (mosquitto_pub
// --cafile and mqtt.js), mutual TLS, users and passwords (signalbox passwd), ACLs with %u, WebSocket,
// the loopback-only default, and start-up errors for bad certificates.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { makeCertificates, type Certificates } from '../helpers/certs.js'
import { startRunWith } from '../helpers/cli.js'
import { Latch, until } from '../helpers/latch.js'
import { cliPath, requireBinary, runCli, type Spawned } from '../helpers/process.js'
import { tempDir } from '../helpers/signalbox.js'
import { onTeardown } from '../helpers/teardown.js'

const RULES = 'version: 1\nrules:\n  - name: echo\n    from: in/+id\n    to: [{ mqtt: "out/{id}" }]\n'

/** Writes rules and a config file into a temporary directory; returns the config's path. */
function configure (config: string): { dir: string, config: string } {
  const dir = tempDir()
  writeFileSync(join(dir, 'rules.yaml'), RULES)
  writeFileSync(join(dir, 'signalbox.yaml'), `rules: [rules.yaml]\n${config}`)
  return { dir, config: join(dir, 'signalbox.yaml') }
}

async function client (url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options })
  onTeardown(async () => await c.endAsync(true))
  return c
}

/** Whether the broker serves a connection: it answers a subscribe and grants it (a CONNACK alone proves less). */
async function served (c: MqttClient): Promise<boolean> {
  const granted = await c.subscribeAsync(`probe/${String(c.options.clientId)}`, { qos: 1 })
  return granted.length === 1 && granted[0].qos === 1
}

/** The error a refused connection gives (mqtt.js rejects connectAsync with the CONNACK code). */
async function refusal (url: string, options: IClientOptions = {}): Promise<Error & { code?: number }> {
  try {
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options })
    await c.endAsync(true)
  } catch (err) {
    return err as Error & { code?: number }
  }
  throw new Error('the connection was accepted')
}

function collect (c: MqttClient): Latch<string> {
  const got = new Latch<string>()
  c.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`))
  return got
}

/** Adds the users (name → password) to dir/users.yaml and runs the config; its first listener's URL. */
async function startWithUsers (dir: string, config: string, users: Record<string, string>): Promise<{ proc: Spawned, url: string }> {
  for (const [name, password] of Object.entries(users)) passwd(join(dir, 'users.yaml'), name, password)
  const { proc, ports } = await startRunWith(['--config', config], 1)
  return { proc, url: `mqtt://127.0.0.1:${ports[0].port}` }
}

/** SIGTERM, then the access counters of the 'stopped' line the run logs on its way out. */
async function stopAndReport (proc: Spawned): Promise<{ access: Record<string, number> }> {
  proc.child.kill('SIGTERM')
  await proc.exited
  return JSON.parse(proc.stderr().split('\n').find((l) => l.includes('"msg":"stopped"'))!) as { access: Record<string, number> }
}

function passwd (file: string, user: string, password: string): void {
  const r = spawnSync(process.execPath, [cliPath(), 'passwd', file, user], { input: password + '\n', encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
}

describe('security', function () {
  this.timeout(60_000)
  let certs: Certificates
  let certDir: string
  // Made once for the suite (openssl is slow), removed after it.
  before(() => { certDir = mkdtempSync(join(tmpdir(), 'signalbox-certs-')); certs = makeCertificates(certDir) })
  after(() => rmSync(certDir, { recursive: true, force: true }))

  it('serves TLS: mosquitto_pub --cafile and mqtt.js connect, and rules run on what they publish', async () => {
    requireBinary('mosquitto_pub', 'apt-get install -y mosquitto-clients')
    const { config } = configure(`listeners:
  - { type: tcp, port: 0 }
  - { type: tls, port: 0, key: ${certs.serverKey}, cert: ${certs.serverCert} }
`)
    const { ports } = await startRunWith(['--config', config], 2)
    const tls = ports.find((p) => p.type === 'tls')!
    const plain = await client(`mqtt://127.0.0.1:${ports[0].port}`)
    const got = collect(plain)
    await plain.subscribeAsync('out/#', { qos: 1 })
    const r = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tls.port), '--cafile', certs.ca, '-t', 'in/1', '-m', 'over tls', '-q', '1'], { encoding: 'utf8', timeout: 10000 })
    assert.equal(r.status, 0, r.stderr)
    const secure = await client(`mqtts://127.0.0.1:${tls.port}`, { ca: readFileSync(certs.ca) })
    await secure.publishAsync('in/2', 'mqtt.js over tls', { qos: 1 })
    assert.deepEqual((await got.wait(2)).sort(), ['out/1 over tls', 'out/2 mqtt.js over tls'])
    const untrusted = await refusal(`mqtts://127.0.0.1:${tls.port}`)
    assert.match(untrusted.message, /self.signed|unable to verify|certificate/i)
  })

  it('with require_client_cert, accepts a client certificate the CA signed and refuses a client without one', async () => {
    const { config } = configure(`listeners:
  - { type: tls, port: 0, key: ${certs.serverKey}, cert: ${certs.serverCert}, ca: ${certs.ca}, require_client_cert: true }
`)
    const { ports } = await startRunWith(['--config', config], 1)
    const url = `mqtts://127.0.0.1:${ports[0].port}`
    const ok = await client(url, { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) })
    assert.equal(await served(ok), true)
    const refused = await refusal(url, { ca: readFileSync(certs.ca) })
    assert.ok(refused instanceof Error)
  })

  it('checks passwords set with signalbox passwd: good connects; wrong, unknown and anonymous get "not authorized" (5)', async () => {
    const { dir, config } = configure('users_file: users.yaml\n')
    const users = join(dir, 'users.yaml')
    passwd(users, 'alice', 'correct horse')
    const stored = readFileSync(users, 'utf8')
    assert.match(stored, /alice: scrypt\$16384\$8\$1\$/)
    assert.doesNotMatch(stored, /correct horse/)
    const { proc, ports } = await startRunWith(['--config', config], 1)
    const url = `mqtt://127.0.0.1:${ports[0].port}`
    const ok = await client(url, { username: 'alice', password: 'correct horse' })
    assert.equal(await served(ok), true)
    for (const options of [{ username: 'alice', password: 'wrong' }, { username: 'mallory', password: 'x' }, {}]) {
      assert.equal((await refusal(url, options)).code, 5, JSON.stringify(options))
    }
    await until(() => (proc.stderr().match(/connection refused/g) ?? []).length >= 3, 5000, 'refusals logged')
    assert.doesNotMatch(proc.stderr(), /correct horse|"wrong"/, 'no password in the logs')
    // The users file reloads when it changes: a new password works at once.
    passwd(users, 'alice', 'new secret')
    await until(() => proc.stderr().includes('"msg":"users reloaded"'), 10000, 'users reloaded')
    assert.equal(await served(await client(url, { username: 'alice', password: 'new secret' })), true)
    const stopped = await stopAndReport(proc)
    assert.equal(stopped.access.authFailures, 3)
  })

  it('enforces ACLs with %u: own topics allowed; others\' refused on subscribe (0x80) and dropped on publish; a deny entry wins over a broad subscription', async () => {
    const { dir, config } = configure(`users_file: users.yaml
acl:
  users:
    bob:
      - { deny: subscribe, topic: "devices/alice/secret" }
  all:
    - { allow: [publish, subscribe], topic: "devices/%u/#" }
    - { allow: subscribe, topic: "devices/#" }
`)
    const { proc, url } = await startWithUsers(dir, config, { alice: 'a', bob: 'b' })
    const alice = await client(url, { username: 'alice', password: 'a' })
    const bob = await client(url, { username: 'bob', password: 'b' })
    const bobGot = collect(bob)
    const granted = await bob.subscribeAsync('devices/#', { qos: 1 })
    assert.deepEqual(granted.map((g) => g.qos), [1])
    // A refused subscription is SUBACK 0x80, which mqtt.js reports as an error.
    await assert.rejects(bob.subscribeAsync('out/#', { qos: 1 }), /Subscribe error/)
    await alice.publishAsync('devices/alice/temp', '21', { qos: 1 })
    await alice.publishAsync('devices/alice/secret', 'hidden', { qos: 1 })
    await alice.publishAsync('devices/bob/temp', 'forged', { qos: 1 })
    await bob.publishAsync('devices/bob/ping', 'pong', { qos: 1 })
    // Bob's own ping was published after the rest: once it is in, anything of alice's would be too.
    await until(() => bobGot.items.includes('devices/bob/ping pong'), 5000, 'the ping')
    assert.deepEqual(bobGot.items, ['devices/alice/temp 21', 'devices/bob/ping pong'], 'the secret and the forged message never arrive')
    assert.equal(alice.connected, true, 'a denied publish does not disconnect')
    const stopped = await stopAndReport(proc)
    assert.equal(stopped.access.publishDenied, 1)
    assert.equal(stopped.access.subscribeDenied, 1)
    assert.equal(stopped.access.deliveryDenied, 1)
  })

  it('serves MQTT over WebSocket: a round trip through a rule', async () => {
    const { config } = configure('listeners:\n  - { type: ws, port: 0 }\n')
    const { ports } = await startRunWith(['--config', config], 1)
    const ws = await client(`ws://127.0.0.1:${ports[0].port}/mqtt`)
    const got = collect(ws)
    await ws.subscribeAsync('out/#', { qos: 1 })
    await ws.publishAsync('in/7', 'via websocket', { qos: 1 })
    assert.deepEqual(await got.wait(1), ['out/7 via websocket'])
  })

  it('binds to loopback only without users or allow_anonymous, and says so', async () => {
    const { config } = configure('listeners:\n  - { type: tcp, host: 0.0.0.0, port: 0 }\n')
    const { proc, ports } = await startRunWith(['--config', config], 1)
    assert.equal(ports[0].host, '127.0.0.1')
    assert.match(proc.stderr(), /no users are configured and allow_anonymous is not true: listening on loopback only/)
    assert.equal(await served(await client(`mqtt://127.0.0.1:${ports[0].port}`)), true)
  })

  it('stops at start with a clear message for a missing key file and for a certificate that does not match its key', () => {
    const missing = configure(`listeners:\n  - { type: tls, port: 0, key: nope.key, cert: ${certs.serverCert} }\n`)
    const r1 = runCli(['run', '--config', missing.config])
    assert.equal(r1.status, 1)
    assert.match(r1.stderr, new RegExp(`signalbox: LISTENER_TLS: tls listener on 127\\.0\\.0\\.1:0: cannot read key ${join(missing.dir, 'nope.key').replace(/[.]/g, '\\.')}: no such file`))
    const mismatch = configure(`listeners:\n  - { type: tls, port: 0, key: ${certs.strayKey}, cert: ${certs.serverCert} }\n`)
    const r2 = runCli(['run', '--config', mismatch.config])
    assert.equal(r2.status, 1)
    assert.match(r2.stderr, /signalbox: LISTENER_TLS: tls listener on 127\.0\.0\.1:0: the certificate .*server\.pem does not match the key .*stray\.key/)
  })

  it('signalbox passwd changes and deletes users, and refuses a bad user name', () => {
    const file = join(tempDir(), 'users.yaml')
    passwd(file, 'carol', 'one')
    const first = readFileSync(file, 'utf8')
    passwd(file, 'carol', 'two')
    assert.notEqual(readFileSync(file, 'utf8'), first)
    assert.equal(runCli(['passwd', '--delete', file, 'carol']).status, 0)
    assert.doesNotMatch(readFileSync(file, 'utf8'), /carol/)
    const bad = spawnSync(process.execPath, [cliPath(), 'passwd', file, 'a/b'], { input: 'x\n', encoding: 'utf8' })
    assert.equal(bad.status, 1)
    assert.match(bad.stderr, /user name 'a\/b' must not be empty or hold whitespace, '\/', '\+', '#' or '%'/)
    const percent = spawnSync(process.execPath, [cliPath(), 'passwd', file, '%c'], { input: 'x\n', encoding: 'utf8' })
    assert.equal(percent.status, 1, 'a user named %c would fill an ACL filter as a pattern')
    assert.match(percent.stderr, /user name '%c' must not/)
  })

  // Failed before: a removed user, or one whose password changed, stayed connected and kept
  // publishing and subscribing.
  it('a users-file reload disconnects the clients of a removed user and of a changed password, and logs it; others stay', async () => {
    const { dir, config } = configure('users_file: users.yaml\n')
    const users = join(dir, 'users.yaml')
    for (const name of ['alice', 'bob', 'carol']) passwd(users, name, name)
    const { proc, ports } = await startRunWith(['--config', config], 1)
    const url = `mqtt://127.0.0.1:${ports[0].port}`
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map(async (name) => await client(url, { username: name, password: name })))
    const closed = (c: MqttClient): Promise<void> => new Promise((resolve) => c.once('close', () => resolve()))
    const bobClosed = closed(bob)
    const carolClosed = closed(carol)
    assert.equal(runCli(['passwd', '--delete', users, 'bob']).status, 0)
    passwd(users, 'carol', 'a new one')
    await Promise.all([bobClosed, carolClosed])
    await until(() => (proc.stderr().match(/its user was removed from the users file or its password changed/g) ?? []).length === 2, 10_000, 'both revocations logged')
    assert.equal(alice.connected, true)
    await alice.publishAsync('in/1', 'still here', { qos: 1 })
    assert.equal((await refusal(url, { username: 'bob', password: 'bob' })).code, 5)
    assert.equal((await refusal(url, { username: 'carol', password: 'carol' })).code, 5)
    assert.equal(await served(await client(url, { username: 'carol', password: 'a new one' })), true)
    const stopped = await stopAndReport(proc)
    assert.ok(stopped.access.revokedDisconnects >= 2, JSON.stringify(stopped.access))
  })

  // Failed before: any client could publish to $signalbox/dead-letter/<rule>, and subscribers took it for a real dead letter.
  it('refuses and counts client publishes to $signalbox/ and $SYS/ unless an ACL entry names them; the client stays connected', async () => {
    const { dir, config } = configure(`users_file: users.yaml
acl:
  users:
    ops:
      - { allow: publish, topic: "$signalbox/dead-letter/#" }
  all:
    - { allow: [publish, subscribe], topic: "#" }
    - { allow: subscribe, topic: "$signalbox/#" }
    - { allow: subscribe, topic: "$SYS/#" }
`)
    const { proc, url } = await startWithUsers(dir, config, { dev: 'd', ops: 'o' })
    const watcher = await client(url, { username: 'dev', password: 'd' })
    const got = collect(watcher)
    await watcher.subscribeAsync(['$signalbox/#', '$SYS/fake/#', 'out/#'], { qos: 1 })
    const dev = await client(url, { username: 'dev', password: 'd' })
    const ops = await client(url, { username: 'ops', password: 'o' })
    await dev.publishAsync('$signalbox/dead-letter/echo', '{"code":"FORGED"}', { qos: 1 })
    await dev.publishAsync('$signalbox', 'x', { qos: 1 })
    await dev.publishAsync('$SYS/fake/x', 'x', { qos: 1 })
    await ops.publishAsync('$signalbox/dead-letter/echo', '{"code":"DRILL"}', { qos: 1 })
    await dev.publishAsync('in/1', 'after', { qos: 1 })
    // 'after' goes through a rule, published last: once it is in, a forged message would be too.
    await until(() => got.items.includes('out/1 after'), 5000, 'the probe')
    assert.deepEqual(got.items.sort(), ['$signalbox/dead-letter/echo {"code":"DRILL"}', 'out/1 after'])
    assert.equal(dev.connected, true)
    const stopped = await stopAndReport(proc)
    assert.equal(stopped.access.topicReserved, 3)
  })

  it('refuses the same without an ACL: anonymous clients may not publish to $signalbox/', async () => {
    const { config } = configure('')
    const { ports } = await startRunWith(['--config', config], 1)
    const url = `mqtt://127.0.0.1:${ports[0].port}`
    const watcher = await client(url)
    const got = collect(watcher)
    await watcher.subscribeAsync(['$signalbox/#', 'out/#'], { qos: 1 })
    const dev = await client(url)
    await dev.publishAsync('$signalbox/dead-letter/echo', '{"code":"FORGED"}', { qos: 1 })
    await dev.publishAsync('in/2', 'after', { qos: 1 })
    // Published after the forgery: once it is in, the forgery would be too.
    await until(() => got.items.includes('out/2 after'), 5000, 'the probe')
    assert.deepEqual(got.items, ['out/2 after'])
  })
})
