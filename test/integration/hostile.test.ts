// The hostile-input catalogue: every item gets a clear error or a counted refusal, nothing crashes,
// and (at run time) the next good message still flows. Rules-file items go through the loader
// and `signalbox check`; message items through a real broker with real and raw MQTT clients.
import assert from 'node:assert/strict'
import { truncateSync, writeFileSync } from 'node:fs'
import { connect as tcpConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import mqttPacket from 'mqtt-packet'
import type { MqttClient } from 'mqtt'
import { pino } from 'pino'
import { loadConfig } from '../../engine/service/config.js'
import { formatProblemShort } from '../../rules/check/problems.js'
import { loadRuleSet } from '../../rules/compile/ruleset.js'
import { until } from '../helpers/latch.js'
import { connect, subscribe } from '../helpers/mqtt.js'
import { runCli } from '../helpers/process.js'
import { startSignalbox, tempDir, type RunningSignalbox } from '../helpers/signalbox.js'
import { onTeardown } from '../helpers/teardown.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'

/** Loads one rules file's text; returns its problems as `line:col CODE message`. */
function problemsOf (text: string): string[] {
  const file = join(tempDir(), 'hostile.yaml')
  writeFileSync(file, text)
  const result = loadRuleSet([file], { sinkSpecs: SINK_SPECS })
  const problems = result.ok ? result.warnings : result.problems
  return problems.map((p) => `${formatProblemShort(p).slice(file.length + 1)} ${p.message}`)
}

const RULE = (body: string): string => `version: 1\nrules:\n  - name: r\n${body}`

describe('hostile input: rules files', function () {
  this.timeout(30_000)

  it('malformed YAML: YAML_SYNTAX at the line and column', () => {
    const [p] = problemsOf('version: 1\nrules:\n  - name: [unclosed\n')
    assert.match(p, /^\d+:\d+ YAML_SYNTAX /)
  })

  it('a YAML bomb (billion laughs): refused, not expanded', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for (let i = 1; i < 9; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill('*' + String.fromCharCode(96 + i)).join(',')}]`)
    const [p] = problemsOf(lines.join('\n') + '\n')
    assert.match(p, /YAML_SYNTAX .*(alias|Excessive)/i)
  })

  it('a 50 MB rules file: FILE_TOO_LARGE, refused before it is read', () => {
    const file = join(tempDir(), 'huge.yaml')
    writeFileSync(file, '')
    truncateSync(file, 50 * 1024 * 1024)
    const r = runCli(['check', file])
    assert.equal(r.status, 1)
    assert.match(r.stdout, /huge\.yaml:1:1: error FILE_TOO_LARGE: the file is 50\.0 MB; the limit is 10 MB/)
  })

  it('unknown and misspelled keys: UNKNOWN_FIELD with a suggestion', () => {
    const p = problemsOf(RULE('    form: a/b\n    to: [{ mqtt: x }]\n'))
    assert.ok(p.some((l) => /^4:5 UNKNOWN_FIELD unknown field 'form' \(did you mean 'from'\?\)/.test(l)), p.join('\n'))
  })

  it('wrong types: WRONG_TYPE', () => {
    const p = problemsOf(RULE('    from: [a, b]\n    to: x\n'))
    assert.ok(p.some((l) => /^4:11 WRONG_TYPE rules\[0\]\.from must be a string, found a list/.test(l)), p.join('\n'))
    assert.ok(p.some((l) => /^5:9 WRONG_TYPE rules\[0\]\.to must be a list/.test(l)), p.join('\n'))
  })

  for (const filter of ['a/#/b', '#/a', '', 'a+', 'a#']) {
    it(`an invalid filter ${JSON.stringify(filter)}: BAD_FILTER`, () => {
      const p = problemsOf(RULE(`    from: "${filter}"\n    to: [{ mqtt: x }]\n`))
      assert.ok(p.some((l) => / BAD_FILTER /.test(l)), p.join('\n'))
    })
  }

  it("'+a' in `from` is a named capture; as an ACL filter it is BAD_FILTER", () => {
    assert.deepEqual(problemsOf(RULE('    from: "+a"\n    to: [{ mqtt: "x/{a}" }]\n')), [])
    const config = join(tempDir(), 'signalbox.yaml')
    writeFileSync(config, 'acl:\n  all:\n    - { allow: publish, topic: "+a" }\n')
    const loaded = loadConfig(config)
    assert.equal(loaded.ok, false)
    if (!loaded.ok) assert.match(`${formatProblemShort(loaded.problems[0])} ${loaded.problems[0].message}`, /signalbox\.yaml:3:32 BAD_FILTER invalid ACL filter '\+a'/)
  })

  it('an unknown JsonLogic operator: UNKNOWN_OPERATOR with a suggestion', () => {
    const p = problemsOf(RULE('    from: a/b\n    where: { "=>": [1, 2] }\n    to: [{ mqtt: x }]\n'))
    assert.ok(p.some((l) => /UNKNOWN_OPERATOR unknown JsonLogic operator '=>' \(did you mean '>='\?\)/.test(l)), p.join('\n'))
  })

  it('JsonLogic nested 10,000 deep: a clear YAML_SYNTAX; 250 deep: BAD_EXPRESSION', () => {
    const nest = (n: number): string => { let e = '1'; for (let i = 0; i < n; i++) e = `{ "!": [${e}] }`; return e }
    const [deep] = problemsOf(RULE(`    from: a/b\n    where: ${nest(10_000)}\n    to: [{ mqtt: x }]\n`))
    assert.match(deep, /YAML_SYNTAX the YAML nests too deeply to read/)
    const p = problemsOf(RULE(`    from: a/b\n    where: ${nest(250)}\n    to: [{ mqtt: x }]\n`))
    assert.ok(p.some((l) => / BAD_EXPRESSION /.test(l)), p.join('\n'))
  })
})

const RULES = `version: 1
rules:
  - name: echo
    from: in/+id
    where: { "!=": [{ var: payload.v }, null] }
    set: { v: { var: payload.v }, polluted: { var: payload.polluted } }
    to: [{ mqtt: "out/{id}" }]
  - name: by-field
    from: route/+id
    to: [{ mqtt: "routed/{payload.dest}" }]
  - name: grow
    from: grow/+id
    set: { k0: { var: payload.s }, k1: { var: payload.s }, k2: { var: payload.s }, k3: { var: payload.s }, k4: { var: payload.s }, k5: { var: payload.s }, k6: { var: payload.s }, k7: { var: payload.s }, k8: { var: payload.s }, k9: { var: payload.s }, k10: { var: payload.s }, k11: { var: payload.s }, k12: { var: payload.s }, k13: { var: payload.s }, k14: { var: payload.s }, k15: { var: payload.s }, k16: { var: payload.s }, k17: { var: payload.s }, k18: { var: payload.s }, k19: { var: payload.s }, k20: { var: payload.s }, k21: { var: payload.s }, k22: { var: payload.s }, k23: { var: payload.s }, k24: { var: payload.s }, k25: { var: payload.s }, k26: { var: payload.s }, k27: { var: payload.s }, k28: { var: payload.s }, k29: { var: payload.s }, k30: { var: payload.s }, k31: { var: payload.s }, k32: { var: payload.s }, k33: { var: payload.s }, k34: { var: payload.s }, k35: { var: payload.s }, k36: { var: payload.s }, k37: { var: payload.s }, k38: { var: payload.s }, k39: { var: payload.s } }
    to: [{ mqtt: "grown/{id}" }]
  - name: ping
    from: loop/a/+n
    to: [{ mqtt: "loop/b/{n}" }]
  - name: pong
    from: loop/b/+n
    to: [{ mqtt: "loop/a/{n}" }]
`

interface Fixture {
  sb: RunningSignalbox
  pub: MqttClient
  /** Sends a good message and waits for its output: the engine is still serving. */
  probe: () => Promise<void>
}

let probes = 0

async function fixture (limits: Record<string, number> = {}): Promise<Fixture> {
  const sb = await startSignalbox(RULES, { limits })
  const pub = await connect(sb.port)
  const out = await subscribe(sb.port, ['out/#'])
  return {
    sb,
    pub,
    probe: async () => {
      const n = ++probes
      const client = await connect(sb.port)
      await client.publishAsync(`in/probe${n}`, JSON.stringify({ v: n }), { qos: 1 })
      await until(() => out.items.some((m) => m.topic === `out/probe${n}`), 5000, `probe ${n} through the engine`)
    }
  }
}

/** A raw TCP MQTT client, for packets mqtt.js will not send. */
async function rawClient (port: number, clientId: string): Promise<Socket> {
  const socket = tcpConnect(port, '127.0.0.1')
  onTeardown(() => { socket.destroy() })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.on('error', () => {})
  // Read and discard what the broker sends, so a close by the broker is seen.
  socket.resume()
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 60 }))
  return socket
}

/** A QoS 0 PUBLISH with the topic as raw bytes (which may be invalid UTF-8 or hold NUL). */
function rawPublish (topic: Buffer, payload: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, payload])
  const length: number[] = []
  let n = body.length
  do { let byte = n % 128; n = Math.floor(n / 128); if (n > 0) byte |= 0x80; length.push(byte) } while (n > 0)
  return Buffer.concat([Buffer.from([0x30, ...length]), body])
}

describe('hostile input: messages', function () {
  this.timeout(60_000)

  it('a template value that would inject /, #, + or NUL into a topic: refused, dead-lettered, never published', async () => {
    const f = await fixture()
    const routed = await subscribe(f.sb.port, ['routed/#'])
    const dead = await subscribe(f.sb.port, ['$signalbox/dead-letter/#'])
    for (const dest of ['a/b', '#', '+', 'x\u0000y', 'fine']) await f.pub.publishAsync('route/1', JSON.stringify({ dest }), { qos: 1 })
    const letters = await dead.wait(4)
    assert.deepEqual(letters.map((l) => (JSON.parse(l.payload) as { code: string }).code), ['TOPIC_REFUSED', 'TOPIC_REFUSED', 'TOPIC_REFUSED', 'TOPIC_REFUSED'])
    await routed.wait(1)
    assert.deepEqual(routed.items.map((m) => m.topic), ['routed/fine'])
    await f.probe()
  })

  it('non-JSON, empty, binary and truncated payloads: PAYLOAD_NOT_JSON dead letters that keep every byte', async () => {
    const f = await fixture()
    const dead = await subscribe(f.sb.port, ['$signalbox/dead-letter/#'])
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x81])
    for (const payload of [Buffer.from('hello'), Buffer.alloc(0), binary, Buffer.from('{"v": 1, "w": [')]) await f.pub.publishAsync('in/x', payload, { qos: 1 })
    const letters = (await dead.wait(4)).map((l) => JSON.parse(l.payload) as { code: string, payload: string, encoding: string })
    assert.deepEqual(letters.map((l) => l.code), Array(4).fill('PAYLOAD_NOT_JSON'))
    assert.deepEqual(letters[2], { ...letters[2], payload: binary.toString('base64'), encoding: 'base64' })
    assert.equal(f.sb.engine.ruleCountersFor('echo')!.errors, 4)
    await f.probe()
  })

  it('a 600 KB payload: dropped at the broker (max_payload_bytes) and counted; the publisher stays connected', async () => {
    const f = await fixture()
    await f.pub.publishAsync('in/big', Buffer.alloc(600 * 1024, 0x61), { qos: 1 })
    assert.equal(f.sb.broker.access.counters.payloadTooLarge, 1)
    assert.equal(f.sb.engine.ruleCountersFor('echo')?.matched ?? 0, 0)
    assert.equal(f.pub.connected, true)
    await f.pub.publishAsync('in/after', '{"v":"still here"}', { qos: 1 })
    await f.probe()
  })

  // Failed before: the output was counted as published, whatever its size.
  it('a derived payload over max_payload_bytes: refused, counted as dropped, dead-lettered (PAYLOAD_TOO_LARGE), logged once', async () => {
    const lines: string[] = []
    const logger = pino({ level: 'warn' }, { write: (line: string) => { lines.push(line) } })
    const sb = await startSignalbox(RULES, { limits: { maxPayloadBytes: 1000 }, logger })
    const grown = await subscribe(sb.port, ['grown/#', '$signalbox/dead-letter/#'])
    const pub = await connect(sb.port)
    await pub.publishAsync('grow/1', JSON.stringify({ s: 'x'.repeat(10) }), { qos: 1 })
    for (let i = 0; i < 3; i++) await pub.publishAsync('grow/2', JSON.stringify({ s: 'x'.repeat(100) }), { qos: 1 })
    const got = await grown.wait(4)
    assert.deepEqual(got.map((m) => m.topic), ['grown/1', '$signalbox/dead-letter/grow', '$signalbox/dead-letter/grow', '$signalbox/dead-letter/grow'])
    const letter = JSON.parse(got[1].payload) as { code: string, reason: string }
    assert.equal(letter.code, 'PAYLOAD_TOO_LARGE')
    assert.match(letter.reason, /the output payload of 4\d{3} bytes is over max_payload_bytes \(1000\)/)
    const counters = sb.engine.ruleCountersFor('grow')!
    assert.equal(counters.published, 1)
    assert.equal(counters.dropped, 3)
    assert.equal(lines.filter((l) => l.includes('PAYLOAD_TOO_LARGE')).length, 1, lines.join(''))
  })

  it('a payload nested 100,000 deep: not parsed, PAYLOAD_TOO_DEEP', async () => {
    const f = await fixture({ maxPayloadBytes: 1024 * 1024, maxPacketBytes: 2 * 1024 * 1024 })
    const dead = await subscribe(f.sb.port, ['$signalbox/dead-letter/#'])
    await f.pub.publishAsync('in/deep', '{"v":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}', { qos: 1 })
    const [letter] = await dead.wait(1)
    assert.equal((JSON.parse(letter.payload) as { code: string }).code, 'PAYLOAD_TOO_DEEP')
    await f.probe()
  })

  it('{"__proto__": {"polluted": true}}: plain data, no prototype is polluted', async () => {
    const f = await fixture()
    const out = await subscribe(f.sb.port, ['out/proto'])
    await f.pub.publishAsync('in/proto', '{"v": 1, "__proto__": {"polluted": true}}', { qos: 1 })
    const [m] = await out.wait(1)
    assert.deepEqual(JSON.parse(m.payload), { v: 1, polluted: null })
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined)
    await f.probe()
  })

  it('a topic holding NUL (raw packet): dropped and counted', async () => {
    const f = await fixture()
    const raw = await rawClient(f.sb.port, 'raw-nul')
    raw.write(rawPublish(Buffer.from('in/a\u0000b'), Buffer.from('{"v":1}')))
    await until(() => f.sb.broker.access.counters.topicInvalid === 1, 5000, 'NUL topic refused')
    await f.probe()
  })

  it('a topic of 1,000 levels: the broker closes that client; others are unaffected', async () => {
    const f = await fixture()
    const raw = await rawClient(f.sb.port, 'raw-levels')
    const closed = new Promise((resolve) => raw.once('close', resolve))
    raw.write(rawPublish(Buffer.from('in/' + 'x/'.repeat(999) + 'x'), Buffer.from('{"v":1}')))
    await closed
    assert.equal(f.sb.engine.ruleCountersFor('echo')?.matched ?? 0, 0)
    await f.probe()
  })

  // Failed before: the topic was acknowledged and routed with replacement characters.
  it('a topic of invalid UTF-8 (raw packet): the connection is closed (MQTT-1.5.3-1), counted, nothing routed', async () => {
    const f = await fixture()
    const raw = await rawClient(f.sb.port, 'raw-utf8')
    const closed = new Promise((resolve) => raw.once('close', resolve))
    raw.write(rawPublish(Buffer.from([0x69, 0x6e, 0x2f, 0xc3, 0x28, 0xff]), Buffer.from('{"v":1}')))
    await closed
    assert.equal(f.sb.broker.access.counters.invalidUtf8, 1)
    assert.equal(f.sb.engine.ruleCountersFor('echo')?.matched ?? 0, 0)
    await f.probe()
  })

  it('invalid UTF-8 in a subscription filter, a client id or a user name: the connection is closed and counted', async () => {
    const f = await fixture()
    const bad = Buffer.from([0x61, 0xed, 0xa0, 0x80]) // an encoded UTF-16 surrogate: not UTF-8
    const sub = await rawClient(f.sb.port, 'raw-sub-utf8')
    const subClosed = new Promise((resolve) => sub.once('close', resolve))
    const filter = Buffer.concat([Buffer.from([0x00, bad.length]), bad, Buffer.from([0x00])])
    sub.write(Buffer.concat([Buffer.from([0x82, 2 + filter.length, 0x00, 0x01]), filter]))
    await subClosed
    for (const field of ['clientId', 'username'] as const) {
      const socket = tcpConnect(f.sb.port, '127.0.0.1')
      onTeardown(() => { socket.destroy() })
      socket.on('error', () => {})
      socket.resume()
      const closed = new Promise((resolve) => socket.once('close', resolve))
      const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: field === 'clientId' ? 'PLACEHOLDER' : 'ok', username: field === 'username' ? 'PLACEHOLDER' : undefined, keepalive: 60 })
      const at = connect.indexOf('PLACEHOLDER')
      // Same length: four bytes replaced by the bad ones, the rest kept.
      bad.copy(connect, at)
      socket.write(connect)
      await closed
    }
    assert.equal(f.sb.broker.access.counters.invalidUtf8, 3)
    await f.probe()
  })

  // Failed before: CONNACK 0 (accepted); the Paho interoperability suite's "zero length clientid" test fails for it.
  it('a zero-length client id with CleanSession 0: CONNACK 0x02 (identifier rejected, MQTT-3.1.3-8); with CleanSession 1 accepted', async () => {
    const f = await fixture()
    const connack = async (clean: boolean): Promise<number> => {
      const socket = tcpConnect(f.sb.port, '127.0.0.1')
      onTeardown(() => { socket.destroy() })
      socket.on('error', () => {})
      const parser = mqttPacket.parser()
      const code = new Promise<number>((resolve) => parser.on('packet', (p: { cmd: string, returnCode?: number }) => { if (p.cmd === 'connack') resolve(p.returnCode!) }))
      socket.on('data', (chunk) => parser.parse(chunk))
      // By hand: mqtt-packet will not generate it. Protocol name, level 4, flags, keep-alive 60, then a zero-byte client id.
      socket.write(Buffer.from([0x10, 12, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, clean ? 0x02 : 0x00, 0x00, 0x3c, 0x00, 0x00]))
      return await code
    }
    assert.equal(await connack(false), 2)
    assert.equal(await connack(true), 0)
    await f.probe()
  })

  // Failed before: a 200 MiB packet was buffered whole, before and after authentication.
  it('a packet over max_packet_bytes: the connection is closed once the fixed header is read, counted; others unaffected', async () => {
    const f = await fixture({ maxPacketBytes: 64 * 1024 })
    // After CONNECT: a PUBLISH declaring 200 MiB, of which only the start is sent.
    const raw = await rawClient(f.sb.port, 'raw-huge')
    const closed = new Promise((resolve) => raw.once('close', resolve))
    raw.write(Buffer.concat([Buffer.from([0x30, 0x80, 0x80, 0x80, 0x64]), Buffer.alloc(32 * 1024, 0x61)]))
    await closed
    // Before CONNECT (so before authentication): the CONNECT packet itself declares 200 MiB.
    const early = tcpConnect(f.sb.port, '127.0.0.1')
    onTeardown(() => { early.destroy() })
    early.on('error', () => {})
    early.resume()
    const earlyClosed = new Promise((resolve) => early.once('close', resolve))
    early.write(Buffer.concat([Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]), Buffer.alloc(32 * 1024, 0x61)]))
    await earlyClosed
    assert.equal(f.sb.broker.access.counters.packetTooLarge, 2)
    // Under the limit and over max_payload_bytes: dropped and counted, the client stays.
    await f.pub.publishAsync('in/big', Buffer.alloc(40 * 1024, 0x61), { qos: 1 })
    assert.equal(f.pub.connected, true)
    await f.probe()
  })

  it('a connection that sends no CONNECT: closed after connect_timeout_ms and counted', async () => {
    const f = await fixture({ connectTimeoutMs: 300 })
    const silent = tcpConnect(f.sb.port, '127.0.0.1')
    onTeardown(() => { silent.destroy() })
    silent.on('error', () => {})
    silent.resume()
    await new Promise((resolve) => silent.once('close', resolve))
    assert.equal(f.sb.broker.access.counters.connectTimeouts, 1)
    await f.probe()
  })

  it('a republish loop between two rules: stopped at max_hops and counted', async () => {
    const f = await fixture()
    await f.pub.publishAsync('loop/a/1', 'x', { qos: 1 })
    await until(() => f.sb.engine.counters.hopLimit === 1, 5000, 'hop limit')
    await until(() => f.sb.engine.ruleCountersFor('ping')!.published + f.sb.engine.ruleCountersFor('pong')!.published === 8, 5000, 'eight republishes counted')
    await f.probe()
  })

  it('a client that connects 1,000 times in a loop: every connection handled, nothing left behind', async () => {
    const f = await fixture()
    const before = f.sb.broker.aedes.connectedClients
    for (let i = 0; i < 1000; i++) {
      const socket = await rawClient(f.sb.port, 'flapper')
      socket.destroy()
    }
    await until(() => f.sb.broker.aedes.connectedClients === before, 10_000, `connections closed (have ${f.sb.broker.aedes.connectedClients}, had ${before})`)
    await f.probe()
  })

  it('a client that publishes and never reads: others keep receiving; it is cut off after client_drain_timeout_ms', async () => {
    const f = await fixture({ clientDrainTimeoutMs: 1000 })
    const watcher = await subscribe(f.sb.port, ['flood/#'])
    const raw = await rawClient(f.sb.port, 'never-reads')
    raw.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood/#', qos: 0 }] }))
    // It stops reading: its socket buffers fill while it keeps publishing QoS 1 (whose PUBACKs it never reads).
    raw.pause()
    const chunk = Buffer.alloc(16 * 1024, 0x62)
    for (let i = 0; i < 50; i++) raw.write(mqttPacket.generate({ cmd: 'publish', topic: `flood/raw${i}`, payload: chunk, qos: 1, messageId: i + 2, retain: false, dup: false }))
    for (let i = 0; i < 1000; i++) f.pub.publish(`flood/${i}`, chunk)
    await watcher.wait(1050, 30_000)
    await until(() => (f.sb.broker.aedes as unknown as { clients: Record<string, unknown> }).clients['never-reads'] === undefined, 15_000, 'the client that never reads is disconnected')
    await f.probe()
  })
})
