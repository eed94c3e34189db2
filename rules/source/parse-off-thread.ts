/**
 * Parses and validates rules files on a worker thread (parse-worker.ts), so a reload's YAML and
 * schema work never holds the broker: the main thread only takes the result in, a piece per turn
 * of the event loop. The thread starts on the first file and ends with close(), which gives its
 * memory back (a 10,000-rule file's parse leaves hundreds of MB of garbage behind).
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { deserialize } from 'node:v8'
import { Worker } from 'node:worker_threads'
import type { FastRead } from './fast-yaml.js'
import { sourceFromRead } from './load.js'
import type { ParsedFile } from './parse-file.js'
import type { RuleProblem } from '../check/problems.js'

/** A file to parse (the schema is sent when the thread has not had this one yet), or the next piece of the answer. */
export type ParseRequest = { kind: 'parse', file: string, text: string | undefined, schema?: Record<string, unknown> } | { kind: 'more' }

export type ParseAnswer =
  | { kind: 'head', ok: true, read: FastRead | { data: unknown }, ruleCount: number, problemCount: number, text: string | undefined }
  | { kind: 'head', ok: false, problemCount: number }
  | { kind: 'piece', items: Uint8Array[] }

// Built, the thread runs parse-worker.js. From the sources (tests, under tsx), a thread does not
// take the main thread's loader hooks, so it registers tsx's itself before loading parse-worker.ts.
const FROM_SOURCE = import.meta.url.endsWith('.ts')
const WORKER_URL = new URL(`./parse-worker${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url)

function newWorker (): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_URL)
  return new Worker(`import(${JSON.stringify(tsxApiUrl())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL.href)}) })`, { eval: true })
}

/** tsx's ESM API (its register()), by the import path its package exports. */
function tsxApiUrl (): string {
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json')
  const exports = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports
  return pathToFileURL(join(dirname(manifest), exports['./esm/api'].import.default)).href
}

export class OffThreadParser {
  private worker: Worker | undefined
  /** The schema the current thread has. */
  private sentSchema: Record<string, unknown> | undefined

  /**
   * Parses one file and validates it against a rules schema, from its text or, without one, read on the thread (a file
   * refused there never costs this thread its read). Waits for `turn` between pieces so the
   * caller can let the event loop run. Rejects if the thread dies.
   */
  async parse (file: string, text: string | undefined, schema: Record<string, unknown>, turn: () => Promise<void>): Promise<ParsedFile> {
    const fresh = this.worker === undefined || this.sentSchema !== schema
    this.start()
    this.sentSchema = schema
    const head = await this.ask({ kind: 'parse', file, text, ...(fresh ? { schema } : {}) })
    if (head.kind !== 'head') throw new Error('parse worker answered out of turn')
    const items: unknown[] = []
    const total = head.ok ? head.ruleCount + head.problemCount : head.problemCount
    while (items.length < total) {
      await turn()
      const piece = await this.ask({ kind: 'more' })
      if (piece.kind !== 'piece' || piece.items.length === 0) throw new Error('parse worker ended a file early')
      for (const item of piece.items) items.push(deserialize(item))
    }
    if (!head.ok) return { ok: false, problems: items as RuleProblem[] }
    const rules = items.slice(0, head.ruleCount)
    const problems = items.slice(head.ruleCount) as RuleProblem[]
    const data = head.read.data as { rules?: unknown } | null
    if (data !== null && typeof data === 'object' && Array.isArray(data.rules)) data.rules = rules
    const read = text ?? head.text
    if (read === undefined) throw new Error('parse worker sent no text')
    return { ok: true, source: sourceFromRead(file, read, head.read), problems }
  }

  /** Ends the thread (and frees what it holds); the next parse starts a new one. */
  async close (): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    if (worker !== undefined) await worker.terminate()
  }

  private async ask (request: ParseRequest): Promise<ParseAnswer> {
    const worker = this.start()
    return await new Promise((resolve, reject) => {
      const settle = (): void => { worker.off('message', onMessage); worker.off('error', onError); worker.off('exit', onExit) }
      const onMessage = (answer: ParseAnswer): void => { settle(); resolve(answer) }
      const onError = (err: Error): void => { settle(); reject(err) }
      const onExit = (code: number): void => { settle(); reject(new Error(`the parse thread exited (code ${code})`)) }
      worker.on('message', onMessage).on('error', onError).on('exit', onExit)
      worker.postMessage(request)
    })
  }

  private start (): Worker {
    if (this.worker !== undefined) return this.worker
    const worker = newWorker()
    // A reload must not keep the process alive, nor an idle thread.
    worker.unref()
    // A thread that failed is not asked again.
    worker.once('error', () => { if (this.worker === worker) this.worker = undefined })
    worker.once('exit', () => { if (this.worker === worker) this.worker = undefined })
    this.worker = worker
    return worker
  }
}
