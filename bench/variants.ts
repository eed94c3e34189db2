/**
 * The shipped signalbox with one fast path taken out, beside the real one, so a bench can run
 * both in one round and say what the fast path buys end to end. Each variant is a copy of bin/,
 * dist/ and package.json under node_modules/.signalbox-bench/ (so its packages resolve as the
 * real one's do) with one line of the compiled code replaced; a replacement whose text is no
 * longer in the code fails the bench instead of measuring the same code twice.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from './root.js'

export type FastPath = 'codegen' | 'picker' | 'fast-yaml'

/** What each variant replaces: file under dist/, the text, and what takes its place. */
const WITHOUT: Record<FastPath, { describe: string, file: string, edits: Array<[string, string]> }> = {
  codegen: {
    describe: 'without generated code for where/set (the closure compiler alone, rules/logic/logic.ts)',
    file: 'rules/logic/logic.js',
    edits: [['options.codegen === false ?', 'true ?'], ['if (options.codegen !== false)', 'if (false)']]
  },
  picker: {
    describe: 'without the payload picker (JSON.parse of every payload a rule reads)',
    file: 'engine/runtime/engine.js',
    edits: [['const picker = PayloadPicker.for(fields, this.maxJsonDepth);', 'const picker = undefined;']]
  },
  'fast-yaml': {
    describe: 'without the fast YAML path (the yaml library reads every file)',
    file: 'rules/source/load.js',
    edits: [['const fast = readYamlFast(text);', 'const fast = undefined;']]
  }
}

export function describeVariant (path: FastPath): string {
  return WITHOUT[path].describe
}

const made = new Map<FastPath, string>()

/** bin/signalbox.js of a copy without `path`, made afresh once per bench process. */
export function signalboxWithout (path: FastPath): string {
  const known = made.get(path)
  if (known !== undefined) return known
  const root = join(projectRoot, 'node_modules', '.signalbox-bench', `without-${path}`)
  rmSync(root, { recursive: true, force: true })
  mkdirSync(root, { recursive: true })
  for (const part of ['bin', 'dist', 'package.json']) cpSync(join(projectRoot, part), join(root, part), { recursive: true, filter: (src) => !src.includes(join('dist', 'bench')) })
  const { file, edits } = WITHOUT[path]
  const target = join(root, 'dist', file)
  if (!existsSync(target)) throw new Error(`${file} is not in dist/: build first`)
  let text = readFileSync(target, 'utf8')
  for (const [from, to] of edits) {
    if (!text.includes(from)) throw new Error(`the variant without ${path} cannot be made: '${from}' is no longer in dist/${file}`)
    text = text.replace(from, to)
  }
  writeFileSync(target, text)
  const bin = join(root, 'bin', 'signalbox.js')
  made.set(path, bin)
  return bin
}
