// The systemd unit in docs/operations.md is a unit systemd accepts.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { documents } from '../helpers/paths.js'
import { tempDir } from '../helpers/signalbox.js'

describe('systemd unit', () => {
  const unit = /```ini\n# signalbox\.service\n([\s\S]*?)```/.exec(documents().find((d) => d.file === join('docs', 'operations.md'))!.text)?.[1]

  it('is in docs/operations.md', () => {
    assert.ok(unit !== undefined && unit.includes('ExecStart='), 'no unit found')
  })

  it('passes systemd-analyze verify, which refuses a broken one', function () {
    if (spawnSync('sh', ['-c', 'command -v systemd-analyze']).status !== 0) {
      // Debian's systemd is not on this machine (CI installs only what the other tests need).
      console.log('      (skipped: systemd-analyze is not installed; apt-get install -y systemd)')
      this.skip()
    }
    const dir = tempDir()
    const verify = (text: string): { status: number | null, out: string } => {
      writeFileSync(join(dir, 'signalbox.service'), text)
      const r = spawnSync('systemd-analyze', ['verify', './signalbox.service'], { cwd: dir, encoding: 'utf8' })
      return { status: r.status, out: r.stdout + r.stderr }
    }
    const good = verify(unit!)
    assert.equal(good.status, 0, good.out)
    assert.notEqual(verify(unit!.replace('ExecStart=/usr/bin/env', 'ExecStart=/usr/bin/no-such-env')).status, 0, 'a broken unit is refused')
  })
})
