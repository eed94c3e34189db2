// Router: the MQTT matching rules (spec 4.7), the shared vectors, and a property test against a naive matcher.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { Router } from '../../engine/runtime/router.js'
import { parsePattern, validateFilter, validateTopicName } from '../../rules/model/pattern.js'
import { vectorPath } from '../helpers/paths.js'

/** The reference: split both and compare level by level, straight from the spec's wording. */
function naiveMatch (filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

function matches (filter: string, topic: string): boolean {
  const router = new Router<string>()
  router.add(filter, filter)
  return router.match(topic).length === 1
}

interface ExtendedCase { id: string, filter: string | null, topic: string | null, expect: string, note?: string }

describe('router', () => {
  describe('spec vectors (topic-match.json)', () => {
    const vectors = JSON.parse(readFileSync(vectorPath('topic-match.json'), 'utf8')) as {
      matches: Array<{ filter: string, topic: string, match: boolean, why: string }>
      invalid_filters: Array<{ filter: string, why: string }>
      valid_filters: string[]
    }
    for (const v of vectors.matches) {
      it(`${v.match ? 'matches' : 'does not match'} ${JSON.stringify(v.topic)} with ${JSON.stringify(v.filter)} (${v.why})`, () => {
        assert.equal(matches(v.filter, v.topic), v.match)
      })
    }
    for (const v of vectors.invalid_filters) {
      it(`refuses the filter ${JSON.stringify(v.filter)} (${v.why})`, () => {
        assert.notEqual(validateFilter(v.filter), undefined)
      })
    }
    for (const f of vectors.valid_filters) {
      it(`accepts the filter ${JSON.stringify(f)}`, () => {
        assert.equal(validateFilter(f), undefined)
        assert.ok(parsePattern(f).ok)
      })
    }
  })

  describe('extended vectors (topic-match-extended.json)', () => {
    const { cases } = JSON.parse(readFileSync(vectorPath('topic-match-extended.json'), 'utf8')) as { cases: ExtendedCase[] }
    for (const c of cases) {
      const title = `${c.id} ${c.expect} filter=${JSON.stringify(c.filter)} topic=${JSON.stringify(c.topic)}`
      it(title, () => {
        switch (c.expect) {
          case 'match': case 'no_match':
            assert.equal(matches(c.filter!, c.topic!), c.expect === 'match')
            break
          case 'invalid_filter':
            assert.notEqual(validateFilter(c.filter!), undefined)
            break
          case 'valid_filter':
            assert.equal(validateFilter(c.filter!), undefined)
            break
          case 'invalid_topic':
            assert.notEqual(validateTopicName(c.topic!), undefined)
            break
          case 'valid_topic':
            assert.equal(validateTopicName(c.topic!), undefined)
            break
          default:
            assert.fail(`unknown expectation ${c.expect}`)
        }
      })
    }
  })

  describe('semantics', () => {
    it('is case-sensitive', () => {
      assert.equal(matches('Sensors/+', 'sensors/a'), false)
    })
    it('matches an empty level with +', () => {
      assert.equal(matches('a/+/b', 'a//b'), true)
      assert.equal(matches('+', ''), true)
    })
    it('matches the parent level with #', () => {
      assert.equal(matches('a/#', 'a'), true)
    })
    it('does not match $SYS/x with a leading + or # [MQTT-4.7.2-1]', () => {
      assert.equal(matches('+/x', '$SYS/x'), false)
      assert.equal(matches('#', '$SYS/x'), false)
      assert.equal(matches('$SYS/#', '$SYS/x'), true)
      assert.equal(matches('$SYS/+', '$SYS/x'), true)
    })
    it('returns every matching value in the order added', () => {
      const r = new Router<number>()
      r.add('a/#', 0)
      r.add('a/b', 1)
      r.add('+/b', 2)
      r.add('#', 3)
      r.add('a/c', 4)
      assert.deepEqual(r.match('a/b'), [0, 1, 2, 3])
    })
    it('forgets cached lookups when a filter is added, in both cache generations', () => {
      const r = new Router<number>(2)
      assert.deepEqual(r.match('a/b'), [])
      r.match('x/1')
      r.match('x/2') // the second generation is full: 'a/b' and 'x/1' move to the older one
      assert.deepEqual(r.match('x/2'), [])
      r.add('a/+', 0)
      r.add('x/#', 1)
      assert.deepEqual(r.match('a/b'), [0])
      assert.deepEqual(r.match('x/2'), [1])
    })
  })

  describe('property: agrees with the naive matcher', () => {
    const level = fc.constantFrom('a', 'b', 'c', '', '$x', 'A')
    const filterLevel = fc.constantFrom('a', 'b', 'c', '', '+', '$x', 'A')
    const filter = fc.oneof(
      fc.tuple(fc.array(filterLevel, { minLength: 1, maxLength: 5 }), fc.boolean())
        .map(([ls, hash]) => hash ? [...ls, '#'].join('/') : ls.join('/'))
        .filter((f) => f.length > 0),
      fc.constantFrom('#', '+', '+/#'))
    const topic = fc.array(level, { minLength: 1, maxLength: 6 }).map((ls) => ls.join('/'))
      .filter((t) => t.length > 0)

    it('for one filter at a time', () => {
      fc.assert(fc.property(filter, topic, (f, t) => {
        assert.equal(validateFilter(f), undefined)
        assert.equal(matches(f, t), naiveMatch(f, t))
      }), { numRuns: 5000, seed: 1 })
    })

    it('for a trie of many filters', () => {
      fc.assert(fc.property(fc.array(filter, { minLength: 1, maxLength: 40 }), fc.array(topic, { maxLength: 20 }), (filters, topics) => {
        const router = new Router<number>()
        filters.forEach((f, i) => router.add(f, i))
        for (const t of topics) {
          const expected = filters.map((f, i) => naiveMatch(f, t) ? i : -1).filter((i) => i >= 0)
          assert.deepEqual(router.match(t), expected)
        }
      }), { numRuns: 500, seed: 2 })
    })
  })
})
