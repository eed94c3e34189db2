// The settings table (engine/service/settings.ts) is the one place a setting is written: its
// default passes its own schema, its flag is checked by that schema, and the config schema holds it.
import assert from 'node:assert/strict'
import { Ajv } from 'ajv'
import { configSchema } from '../../engine/service/config.js'
import { LIMIT_SETTINGS, parseFlag, SETTINGS, valueAt, type Setting } from '../../engine/service/settings.js'

const all = [...Object.values(SETTINGS), ...Object.values(LIMIT_SETTINGS)] as Array<Setting<unknown>>

describe('settings', () => {
  it('gives each setting a default its own schema accepts (or none)', () => {
    const ajv = new Ajv({ strict: false })
    for (const s of all) {
      if (s.default === undefined || s.fromFile !== undefined) continue
      assert.ok(ajv.validate(s.schema, s.default), `${s.key}: default ${JSON.stringify(s.default)} fails ${ajv.errorsText()}`)
    }
  })

  it('puts every key in the config schema, at its dotted path, with its description', () => {
    for (const s of all) {
      const path = s.key.split('.')
      const property = valueAt(configSchema.properties, path.join('.properties.')) as { description?: string } | undefined
      assert.ok(property?.description?.startsWith(s.description), s.key)
    }
  })

  it('checks a flag by the setting\'s schema: range, pattern, and the setting\'s own check', () => {
    assert.deepEqual(parseFlag(SETTINGS.maxHops, '64'), { value: 64 })
    assert.deepEqual(parseFlag(SETTINGS.maxHops, '65'), { problem: 'a whole number from 1 to 64' })
    assert.deepEqual(parseFlag(SETTINGS.maxHops, '2.5'), { problem: 'a whole number from 1 to 64' })
    assert.deepEqual(parseFlag(SETTINGS.maxHops, ''), { problem: 'a whole number from 1 to 64' })
    assert.deepEqual(parseFlag(SETTINGS.port, '0'), { value: 0 })
    assert.match((parseFlag(SETTINGS.share, 'a/b') as { problem: string }).problem, /may not hold '\/'/)
    assert.deepEqual(parseFlag(SETTINGS.http, ':9100'), { value: { host: '127.0.0.1', port: 9100 } })
    assert.match((parseFlag(SETTINGS.http, 'nine') as { problem: string }).problem, /give host:port/)
  })
})
