/** Child processes for tests: the built CLI and the Mosquitto command-line clients, killed by PID at teardown. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Latch } from './latch.js'
import { projectRoot } from './paths.js'
import { onTeardown } from './teardown.js'

export interface Spawned {
  child: ChildProcess
  /** stdout lines, as they arrive. */
  lines: Latch<string>
  stderr: () => string
  exited: Promise<number | null>
}

/** Fails with an install hint when a binary the tests need is missing; never a silent skip. */
export function requireBinary (name: string, install: string): void {
  const found = spawnSync('sh', ['-c', `command -v ${name}`]).status === 0
  if (!found) throw new Error(`${name} not found on PATH. Install: ${install}`)
}

/**
 * `signalbox run` arguments with a data directory of the test's own (removed at teardown) unless
 * they give one: a test never writes ./signalbox-data into the repository.
 */
export function withDataDir (args: string[]): string[] {
  if (args[0] !== 'run' || args.includes('--data-dir')) return args
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-data-'))
  onTeardown(() => rmSync(dir, { recursive: true, force: true }))
  return ['run', '--data-dir', dir, ...args.slice(1)]
}

/** Spawns a child killed at teardown; `uid`/`gid` run it as another user (a server that refuses root). */
export function spawnTracked (command: string, args: string[], options: { cwd?: string, uid?: number, gid?: number } = {}): Spawned {
  const child = spawn(command, args, { cwd: options.cwd ?? projectRoot, stdio: ['ignore', 'pipe', 'pipe'], uid: options.uid, gid: options.gid })
  const lines = new Latch<string>()
  let buffered = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    let nl: number
    while ((nl = buffered.indexOf('\n')) >= 0) { lines.push(buffered.slice(0, nl)); buffered = buffered.slice(nl + 1) }
  })
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  onTeardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  return { child, lines, stderr: () => err, exited }
}

/** The built CLI (`npm run build` puts it in dist/; `npm test` builds first). */
export function cliPath (): string {
  const bin = join(projectRoot, 'bin', 'signalbox.js')
  if (!existsSync(join(projectRoot, 'dist', 'engine', 'cli', 'cli.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does) before the CLI tests')
  return bin
}

/** Runs the CLI to completion. */
export function runCli (args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [cliPath(), ...withDataDir(args)], { cwd: projectRoot, encoding: 'utf8', timeout: 20000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}
