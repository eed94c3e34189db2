// Installing signalbox outside the repository, as a user would: `npm pack`, then `npm install -g`
// into a temporary prefix (from the npm registry for its dependencies). The installed command runs
// with its MQTT dependencies patched; an install whose scripts did not run refuses to start the
// broker instead of losing messages silently.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mosquittoPub, mosquittoSub } from '../helpers/cli.js'
import { projectRoot } from '../helpers/paths.js'
import { spawnTracked, withDataDir } from '../helpers/process.js'

function npm (args: string[], cwd: string): string {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', timeout: 240_000, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } })
  assert.equal(r.status, 0, `npm ${args.join(' ')}: ${r.stdout}\n${r.stderr}`)
  return r.stdout
}

describe('install', function () {
  this.timeout(300_000)
  let tarball: string
  let installed: string
  let noScripts: string

  let dir: string
  // One install for both tests (tempDir's teardown runs after each test).
  after(() => { rmSync(dir, { recursive: true, force: true }) })
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'signalbox-install-'))
    // dist/ is built (npm test builds first), so pack skips `prepare`.
    npm(['pack', '--ignore-scripts', '--pack-destination', dir], projectRoot)
    tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!)
    installed = join(dir, 'prefix')
    npm(['install', '-g', '--prefix', installed, tarball], dir)
    noScripts = join(dir, 'prefix-no-scripts')
    npm(['install', '-g', '--ignore-scripts', '--prefix', noScripts, tarball], dir)
  })

  it('npm pack + npm install -g gives a signalbox on PATH that checks and runs rules, with its dependencies patched', async () => {
    const bin = join(installed, 'bin', 'signalbox')
    const version = spawnSync(bin, ['--version'], { encoding: 'utf8' })
    assert.equal(version.stdout.trim(), '0.1.0', version.stderr)
    const check = spawnSync(bin, ['check', join(projectRoot, 'fixtures', 'rules', 'home.yaml')], { encoding: 'utf8' })
    assert.match(check.stdout, /^ok: 3 rules in 1 file$/m, check.stderr)
    const run = spawnTracked(bin, withDataDir(['run', '--port', '0', join(projectRoot, 'fixtures', 'rules', 'home.yaml')]))
    let port: number | undefined
    for (let i = 0; i < 500 && port === undefined; i++) {
      port = Number(/listening on [^ "]+:(\d+) \(tcp\)/.exec(run.stderr())?.[1]) || undefined
      if (run.child.exitCode !== null) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.ok(port !== undefined, run.stderr())
    const sub = await mosquittoSub(port, ['alerts/#'])
    mosquittoPub(port, 'sensors/kitchen/temperature', '{"celsius":31}')
    const got = await sub.wait(1)
    assert.ok(got.some((l) => l.startsWith('alerts/kitchen/hot ')), got.join('\n'))
  })

  it('an install whose scripts did not run (no patches) refuses to start the broker, and says why', () => {
    const bin = join(noScripts, 'bin', 'signalbox')
    const run = spawnSync(bin, withDataDir(['run', '--port', '0', join(projectRoot, 'fixtures', 'rules', 'home.yaml')]), { encoding: 'utf8', timeout: 20_000 })
    assert.equal(run.status, 1, run.stderr)
    assert.match(run.stderr, /dependencies are not patched \(aedes\/lib\/write\.js, mqemitter\/mqemitter\.js, mqtt-packet\/parser\.js\)/)
    // Checking rules needs no broker: it still works.
    const check = spawnSync(bin, ['check', join(projectRoot, 'fixtures', 'rules', 'home.yaml')], { encoding: 'utf8' })
    assert.equal(check.status, 0, check.stderr)
  })
})
