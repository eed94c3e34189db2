// ACL decisions without a broker: first match wins, default deny, %u/%c substitution, and
// subscription filters that must lie inside an allowed filter.
import assert from 'node:assert/strict'
import { Acl, covers } from '../../engine/broker/acl.js'
import { topicMatches } from '../../rules/model/pattern.js'
import { parseSource } from '../../rules/source/load.js'

function acl (yaml: string): Acl {
  const parsed = parseSource('acl.yaml', yaml)
  assert.ok(parsed.ok)
  if (!parsed.ok) throw new Error('unreachable')
  const compiled = Acl.compile(parsed.source, (parsed.source.data as { acl: never }).acl, ['acl'])
  assert.deepEqual(compiled.problems, [])
  return compiled.acl
}

const alice = { username: 'alice', clientId: 'sensor-7' }
const anonymous = { username: null, clientId: 'anon-1' }

describe('acl', () => {
  const rules = acl(`acl:
  users:
    alice:
      - { deny: publish, topic: "devices/alice/locked" }
  anonymous:
    - { allow: subscribe, topic: "public/#" }
  all:
    - { allow: [publish, subscribe], topic: "devices/%u/#" }
    - { allow: publish, topic: "clients/%c/status" }
`)

  it('lets the first entry that applies decide, and denies what none allows', () => {
    assert.equal(rules.canPublish(alice, 'devices/alice/temp'), true)
    assert.equal(rules.canPublish(alice, 'devices/alice/locked'), false, 'her own deny comes first')
    assert.equal(rules.canPublish(alice, 'devices/bob/temp'), false)
    assert.equal(rules.canPublish(alice, 'elsewhere'), false)
  })

  it('substitutes %c, and never matches %u for an anonymous client', () => {
    assert.equal(rules.canPublish(alice, 'clients/sensor-7/status'), true)
    assert.equal(rules.canPublish(alice, 'clients/other/status'), false)
    assert.equal(rules.canPublish(anonymous, 'clients/anon-1/status'), true)
    assert.equal(rules.canPublish(anonymous, 'devices//x'), false)
  })

  it('does not let a user name or client id holding a wildcard or slash widen a filter', () => {
    assert.equal(rules.canPublish({ username: '#', clientId: 'c' }, 'devices/x/y'), false)
    assert.equal(rules.canPublish({ username: 'a', clientId: 'x/y' }, 'clients/x/y/status'), false)
  })

  // Failed before: %u was filled in first, then %c inside the result, so a user named '%c' read
  // the area of whichever client id it connected with ('devices/alice/#' with client id alice).
  it('fills %u and %c in one pass: a user name or client id holding % never acts as a pattern', () => {
    assert.equal(rules.canPublish({ username: '%c', clientId: 'alice' }, 'devices/alice/temp'), false)
    assert.equal(rules.canSubscribe({ username: '%c', clientId: 'alice' }, 'devices/alice/#'), false)
    assert.equal(rules.canPublish({ username: 'alice', clientId: '%u' }, 'clients/alice/status'), false)
    assert.equal(rules.canPublish({ username: 'alice', clientId: '%u' }, 'clients/%u/status'), false)
    const both = acl('acl:\n  all:\n    - { allow: publish, topic: "x/%u/%c" }\n')
    assert.equal(both.canPublish({ username: 'bob', clientId: 'phone' }, 'x/bob/phone'), true)
    assert.equal(both.canPublish({ username: '%c', clientId: 'phone' }, 'x/phone/phone'), false)
  })

  it('grants a subscription only inside an allowed filter, and checks each delivered topic', () => {
    assert.equal(rules.canSubscribe(anonymous, 'public/#'), true)
    assert.equal(rules.canSubscribe(anonymous, 'public/+/temp'), true)
    assert.equal(rules.canSubscribe(anonymous, '#'), false)
    assert.equal(rules.canSubscribe(alice, 'devices/alice/+'), true)
    assert.equal(rules.canSubscribe(alice, 'devices/+/temp'), false)
    assert.equal(rules.canRead(anonymous, 'public/news'), true)
    assert.equal(rules.canRead(anonymous, 'devices/alice/temp'), false)
  })

  it('matches and covers filters by the MQTT rules, $ topics included', () => {
    assert.equal(topicMatches(['a', '#'], 'a'), true)
    assert.equal(topicMatches(['+', 'b'], '$SYS/b'), false)
    assert.equal(covers(['a', '#'], ['a', '+', 'c']), true)
    assert.equal(covers(['a', '+'], ['a', '#']), false)
    assert.equal(covers(['#'], ['$SYS', '#']), false)
    assert.equal(covers(['a', 'b'], ['a', '+']), false)
  })

  it('reports an entry with both or neither of allow and deny, and a bad filter, with positions', () => {
    const parsed = parseSource('acl.yaml', 'acl:\n  all:\n    - { topic: "a/#" }\n    - { allow: publish, topic: "a/#/b" }\n')
    assert.ok(parsed.ok)
    if (!parsed.ok) return
    const { problems } = Acl.compile(parsed.source, (parsed.source.data as { acl: never }).acl, ['acl'])
    assert.deepEqual(problems.map((p) => `${p.line}:${p.col} ${p.code}`), ['3:7 BAD_VALUE', '4:32 BAD_FILTER'])
  })
})
