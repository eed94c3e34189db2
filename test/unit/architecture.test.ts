// The house's rules (docs/architecture.md): imports run one way, engine → adapters → rules and
// engine → rules; no module imports itself through others (type-only imports count too); the
// rules layer uses only its own libraries and loads no network module.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { projectRoot } from '../helpers/paths.js'

const LAYERS = ['rules', 'adapters', 'engine'] as const
type Layer = typeof LAYERS[number]

/** What each layer may import: other layers, and packages (node: built-ins are open to all). */
const MAY_IMPORT: Record<Layer, { layers: readonly Layer[], packages: readonly string[] | 'any' }> = {
  rules: { layers: ['rules'], packages: ['yaml', 'js-yaml', 'ajv'] },
  adapters: { layers: ['rules', 'adapters'], packages: ['mqtt', 'nats', 'pg'] },
  engine: { layers: ['rules', 'adapters', 'engine'], packages: 'any' }
}

interface Module { file: string, layer: Layer, imports: Array<{ spec: string, target?: string }> }

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : []
  })
}

/** Every import of a file: static, re-exports, side-effect and dynamic ones, type-only included. */
export function importsOf (file: string, text: string): Module['imports'] {
  const found = new Set<string>()
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]/g)) found.add(m[1])
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) found.add(m[1])
  for (const m of text.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) found.add(m[1])
  return [...found].map((spec) => spec.startsWith('.') ? { spec, target: resolve(dirname(file), spec).replace(/\.js$/, '.ts') } : { spec })
}

function readModules (): Module[] {
  return LAYERS.flatMap((layer) => sources(join(projectRoot, layer)).map((file) => ({ file, layer, imports: importsOf(file, readFileSync(file, 'utf8')) })))
}

function layerOf (file: string): Layer | undefined {
  const top = relative(projectRoot, file).split('/')[0]
  return (LAYERS as readonly string[]).includes(top) ? top as Layer : undefined
}

/** The wrong-way imports of a set of modules, as 'from → to' lines. */
export function wrongWay (modules: Module[]): string[] {
  const wrong: string[] = []
  for (const m of modules) {
    const allowed = MAY_IMPORT[m.layer]
    for (const i of m.imports) {
      const rel = relative(projectRoot, m.file)
      if (i.target !== undefined) {
        const to = layerOf(i.target)
        if (to === undefined || !allowed.layers.includes(to)) wrong.push(`${rel} → ${relative(projectRoot, i.target)}`)
      } else if (!i.spec.startsWith('node:') && allowed.packages !== 'any') {
        const pkg = i.spec.startsWith('@') ? i.spec.split('/').slice(0, 2).join('/') : i.spec.split('/')[0]
        if (!allowed.packages.includes(pkg)) wrong.push(`${rel} → package ${pkg}`)
      }
    }
  }
  return wrong
}

/** Every cycle of imports (strongly connected set of two or more modules, or a module importing itself). */
export function cycles (modules: Module[]): string[][] {
  const edges = new Map(modules.map((m) => [m.file, m.imports.flatMap((i) => i.target !== undefined ? [i.target] : [])]))
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next); next++
    stack.push(v); onStack.add(v)
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)) } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) !== index.get(v)) return
    const members: string[] = []
    let w: string
    do { w = stack.pop()!; onStack.delete(w); members.push(relative(projectRoot, w)) } while (w !== v)
    if (members.length > 1 || (edges.get(v) ?? []).includes(v)) found.push(members.sort())
  }
  for (const v of edges.keys()) if (!index.has(v)) visit(v)
  return found
}

describe('architecture', () => {
  const modules = readModules()

  it('reads the imports of every module of the three layers', () => {
    assert.ok(modules.length > 60, `${modules.length} modules`)
    for (const layer of LAYERS) assert.ok(modules.some((m) => m.layer === layer && m.imports.length > 0), layer)
  })

  it('imports run one way: engine → adapters → rules, engine → rules; each layer uses only its own packages', () => {
    assert.deepEqual(wrongWay(modules), [])
  })

  it('has no import cycles, type-only imports included', () => {
    assert.deepEqual(cycles(modules), [])
  })

  it('finds a wrong-way import and a cycle when there is one (the checks can fail)', () => {
    const at = (path: string): string => join(projectRoot, path)
    const planted: Module[] = [
      { file: at('rules/a.ts'), layer: 'rules', imports: [{ spec: '../adapters/b.js', target: at('adapters/b.ts') }, { spec: 'mqtt' }] },
      { file: at('adapters/b.ts'), layer: 'adapters', imports: [{ spec: '../engine/c.js', target: at('engine/c.ts') }] },
      { file: at('engine/c.ts'), layer: 'engine', imports: [{ spec: '../rules/a.js', target: at('rules/a.ts') }] }
    ]
    assert.deepEqual(wrongWay(planted), ['rules/a.ts → adapters/b.ts', 'rules/a.ts → package mqtt', 'adapters/b.ts → engine/c.ts'])
    assert.deepEqual(cycles(planted), [['adapters/b.ts', 'engine/c.ts', 'rules/a.ts']])
    assert.deepEqual(importsOf(at('rules/x.ts'), "import type { A } from './a.js'\nexport { B } from '../b.js'\nimport './c.js'\nconst d = await import('./d.js')\n").map((i) => i.spec), ['./a.js', '../b.js', './c.js', './d.js'])
  })

  it('the rules layer and the sink specs reach no transport: check, test and trace load no network client', () => {
    // Followed statically (importsOf sees dynamic imports too): tsx itself loads net, so a probe of
    // the loaded modules cannot tell under the test runner.
    const reached = closure(modules, ['rules/compile/ruleset.ts', 'rules/check/schema.ts', 'adapters/sink-specs.ts'])
    assert.ok(reached.modules.includes('adapters/specs/nats.ts'), 'the walk follows imports')
    assert.deepEqual(reached.packages.filter((p) => !['yaml', 'js-yaml', 'ajv'].includes(p) && !/^node:(fs|fs\/promises|path|url|perf_hooks|v8|os|module|worker_threads)$/.test(p)), [])
    assert.ok(!reached.modules.some((m) => m.startsWith('engine/') || /adapters\/(sinks|sources)\//.test(m)), reached.modules.join(', '))
    // The same walk from the registry (which adds create()) does reach the clients.
    assert.ok(closure(modules, ['adapters/registry.ts']).packages.includes('nats'))
  })
})

/** The modules and packages reachable from some modules by their imports. */
function closure (modules: Module[], from: string[]): { modules: string[], packages: string[] } {
  const byFile = new Map(modules.map((m) => [m.file, m]))
  const seen = new Set<string>()
  const packages = new Set<string>()
  const todo = from.map((f) => join(projectRoot, f))
  while (todo.length > 0) {
    const file = todo.pop()!
    if (seen.has(file)) continue
    seen.add(file)
    for (const i of byFile.get(file)?.imports ?? []) {
      if (i.target !== undefined) todo.push(i.target)
      else packages.add(i.spec)
    }
  }
  return { modules: [...seen].map((f) => relative(projectRoot, f)).sort(), packages: [...packages].sort() }
}
