// aedes-persistence's own abstract test suite (node:test) against signalbox's durable broker
// state (the built dist/engine/durability/broker-state.js), each instance in a new data directory,
// once for each durability that writes it.
// Run by test/integration/broker-state.test.ts as `node --test`; not a mocha file.
import { test } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { pino } from 'pino'
import { DurablePersistence } from '../../dist/engine/durability/broker-state.js'

const require = createRequire(import.meta.url)
const abstract = require('aedes-persistence/abstract.js')
const dirs = []
process.on('exit', () => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

// Both ways of writing: in place (process), and with an fdatasync on the thread pool (power).
for (const sync of ['process', 'power']) {
  abstract({
    test,
    testAsync: true,
    persistence: () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'signalbox-state-'))
      dirs.push(dataDir)
      return new DurablePersistence({ dataDir, sync, logger: pino({ level: 'silent' }) })
    }
  })
}
