// Patterns with named captures, and topic templates: parse errors, rendering, refusals.
import assert from 'node:assert/strict'
import type { RuleData } from '../../rules/logic/logic.js'
import { parsePattern } from '../../rules/model/pattern.js'
import { compileTemplate, parseTemplate, topicToSubject, type TemplateSyntax } from '../../rules/model/template.js'

function render (template: string, data: Partial<RuleData>, multi: string[] = [], syntax: TemplateSyntax = 'topic'): unknown {
  const parsed = parseTemplate(template, syntax)
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.message)
  const meta = { clientId: 'c1', qos: 1, retain: false, receivedAt: Date.UTC(2026, 10, 25, 23, 59), hops: 0 }
  return compileTemplate(parsed.template, new Set(multi), syntax)({ topic: 't', params: {}, payload: undefined, meta, ...data })
}

describe('pattern', () => {
  it('reads +name and #name captures and strips them from the router filter', () => {
    const p = parsePattern('sensors/+room/+/#rest')
    assert.ok(p.ok)
    if (!p.ok) return
    assert.equal(p.pattern.filter, 'sensors/+/+/#')
    assert.deepEqual(p.pattern.captures, [{ name: 'room', level: 1, multi: false }, { name: 'rest', level: 3, multi: true }])
  })

  for (const [filter, why] of [
    ['a/#/b', "'#' must be the last level"], ['a+', "'+' must occupy a whole level"], ['a/#x/b', "'#x' must be the last level"],
    ['a#', "'#' must occupy a whole level"], ['+1/x', 'named capture'], ['', 'must not be empty'], ['a/\u0000', 'NUL'],
    ['+r/+r', "capture 'r' is named twice"], ['$share/g/a', '$share']
  ]) {
    it(`refuses ${JSON.stringify(filter)}`, () => {
      const p = parsePattern(filter)
      assert.equal(p.ok, false)
      if (!p.ok) assert.ok(p.error.message.includes(why), p.error.message)
    })
  }
})

describe('template', () => {
  it('renders captures, payload fields and meta fields', () => {
    assert.equal(render('alerts/{room}/{payload.a.b}/{meta.clientId}', { params: { room: 'hall' }, payload: { a: { b: 7 } } }), 'alerts/hall/7/c1')
  })

  it('lets a #name capture hold /, but no other value', () => {
    assert.equal(render('copy/{rest}', { params: { rest: 'a/b/c' } }, ['rest']), 'copy/a/b/c')
    assert.deepEqual(render('copy/{rest}', { params: { rest: 'a/b' } }), { refused: '{rest} holds \'/\', which a topic level may not' })
  })

  for (const [value, reason] of [['', 'is empty'], ['a+b', "holds '+'"], ['#', "holds '#'"], ['x\u0000', 'holds NUL'], [null, 'is null'], [undefined, 'is missing'], [{}, 'not a string']] as const) {
    it(`refuses a payload value ${JSON.stringify(value)}`, () => {
      const r = render('x/{payload.v}', { payload: { v: value } }) as { refused: string }
      assert.ok(typeof r === 'object' && r.refused.includes(reason), JSON.stringify(r))
    })
  }

  it('refuses a topic that a leading placeholder makes start with $, and keeps a template written with $', () => {
    for (const value of ['$SYS', '$signalbox', '$x']) {
      const r = render('{room}/y', { params: { room: value } }) as { refused: string }
      assert.match(r.refused, /starts with '\$', which is reserved/)
    }
    assert.deepEqual(render('{rest}', { params: { rest: '$SYS/broker/x' } }, ['rest']), { refused: "topic '$SYS/broker/x' starts with '$', which is reserved; only a template written with a leading '$' may publish there" })
    assert.equal(render('$signalbox/{room}', { params: { room: 'hall' } }), '$signalbox/hall')
    assert.equal(render('a/{room}', { params: { room: '$x' } }), 'a/$x')
  })

  it('does not read inherited payload properties', () => {
    assert.deepEqual(render('x/{payload.constructor}', { payload: {} }), { refused: '{payload.constructor} is missing' })
  })

  for (const [template, why] of [
    ['a/{b', 'not closed'], ['a/b}', "no matching '{'"], ['a/{}', 'names nothing'], ['a/+', "'+'"], ['a/#', "'#'"],
    ['{payload}', 'whole payload'], ['{meta.nope}', 'not a meta field'], ['{a.b}', 'dotted'], ['', 'empty']
  ]) {
    it(`refuses the template ${JSON.stringify(template)}`, () => {
      const p = parseTemplate(template)
      assert.equal(p.ok, false)
      if (!p.ok) assert.ok(p.error.message.includes(why), p.error.message)
    })
  }
})

describe('table and URL templates (PostgreSQL, HTTP)', () => {
  it('a table value holds only letters, digits and _; the literal text no quote or space', () => {
    assert.equal(render('readings_{site}', { params: { site: 'north_2' } }, [], 'table'), 'readings_north_2')
    assert.equal(render('plant.{site}', { params: { site: 'a' } }, [], 'table'), 'plant.a')
    for (const bad of ['a"b', 'a;drop', 'a b', 'x.y', '']) assert.equal(typeof render('t_{site}', { params: { site: bad } }, [], 'table'), 'object', bad)
    assert.equal(parseTemplate('bad"table', 'table').ok, false)
    assert.equal(parseTemplate('two words', 'table').ok, false)
  })

  it('a URL value is percent-encoded, so it cannot add a path segment, a query or a fragment; a #name capture keeps its /', () => {
    assert.equal(render('http://h/in/{room}', { params: { room: 'living room/../x?y#z' } }, [], 'url'), 'http://h/in/living%20room%2F..%2Fx%3Fy%23z')
    assert.equal(render('http://h/in/{rest}', { params: { rest: 'a b/c' } }, ['rest'], 'url'), 'http://h/in/a%20b/c')
    assert.equal(parseTemplate('http://h/a b', 'url').ok, false)
  })
})

describe('subject templates (NATS)', () => {
  it('renders tokens, and turns the / of a #name capture into .', () => {
    assert.equal(render('alerts.{room}.hot', { params: { room: 'hall' } }, [], 'subject'), 'alerts.hall.hot')
    assert.equal(render('copy.{rest}', { params: { rest: 'a/b/c' } }, ['rest'], 'subject'), 'copy.a.b.c')
  })

  for (const [value, reason] of [['a.b', "holds '.'"], ['a*', "holds '*'"], ['>', "holds '>'"], ['a b', 'whitespace'], ['a\tb', 'whitespace'], ['', 'is empty']] as const) {
    it(`refuses a value ${JSON.stringify(value)}`, () => {
      const r = render('x.{room}', { params: { room: value } }, [], 'subject') as { refused: string }
      assert.ok(typeof r === 'object' && r.refused.includes(reason), JSON.stringify(r))
    })
  }

  it('refuses a #name capture with an empty level, and a subject with an empty token', () => {
    assert.equal(typeof render('copy.{rest}', { params: { rest: 'a//b' } }, ['rest'], 'subject'), 'object')
    assert.deepEqual(render('a..{room}', { params: { room: 'x' } }, [], 'subject'), { refused: "subject 'a..x' has an empty token" })
  })

  for (const [template, why] of [['a.*', "'*'"], ['a.>', "'>'"], ['a b', 'whitespace']]) {
    it(`refuses the template ${JSON.stringify(template)}`, () => {
      const p = parseTemplate(template, 'subject')
      assert.equal(p.ok, false)
      if (!p.ok) assert.ok(p.error.message.includes(why), p.error.message)
    })
  }

  it('maps an MQTT topic to a subject, refusing what would change its shape', () => {
    assert.equal(topicToSubject('sensors/kitchen/temperature'), 'sensors.kitchen.temperature')
    for (const topic of ['a/b.c', 'a//b', 'a/*', 'a/>', 'a b/c', '$SYS/x', '/a']) {
      assert.equal(typeof topicToSubject(topic), 'object', topic)
    }
  })
})

describe('path templates (files)', () => {
  it('renders {date} as the UTC day the message arrived, and captures', () => {
    assert.equal(render('data/{room}/{date}.jsonl', { params: { room: 'hall' } }, [], 'path'), 'data/hall/2026-11-25.jsonl')
  })

  it('lets a #name capture add directories, but never . or ..', () => {
    assert.equal(render('data/{rest}.log', { params: { rest: 'a/b' } }, ['rest'], 'path'), 'data/a/b.log')
    assert.equal(typeof render('data/{rest}.log', { params: { rest: 'a/../../etc' } }, ['rest'], 'path'), 'object')
  })

  for (const [value, reason] of [['..', "segment '..'"], ['.', "segment '.'"], ['a/b', "'/'"], ['a\\b', "'\\'"], ['x\u0000', 'NUL']] as const) {
    it(`refuses a value ${JSON.stringify(value)}`, () => {
      const r = render('data/{room}.log', { params: { room: value } }, [], 'path') as { refused: string }
      assert.ok(typeof r === 'object' && r.refused.includes(reason), JSON.stringify(r))
    })
  }

  it('knows {date} only in paths', () => {
    const p = parseTemplate('x/{date}', 'topic')
    assert.ok(p.ok && p.template.placeholders[0].kind === 'capture')
  })
})
