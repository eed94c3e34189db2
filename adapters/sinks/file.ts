/**
 * File sink: appends JSON Lines (time, topic, rule, payload) or raw payload lines to files whose
 * path is a template. One writer per path inside the process and one write per run of lines, so
 * lines never interleave; a failed write is cut back to the last whole line. Rotates by size.
 */
import { mkdir, open, rename, stat, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { describePayload } from '../../rules/model/message.js'
import { addressRuns, DeliveryError, QueuedSink, type Rejection } from '../queued-sink.js'
import type { SinkDefinition } from '../../rules/model/sink-spec.js'
import { typedSinkType, type Delivery, type SinkContext } from '../sink.js'
import { fileSinkSpec, type FileSinkOptions } from '../specs/file.js'

const MAX_OPEN_FILES = 64

/** Errors that retrying cannot fix: the messages for that path are dropped as 'rejected'. */
const PERMANENT = new Set(['EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'ENAMETOOLONG', 'EROFS', 'ELOOP', 'EINVAL', 'EEXIST'])

interface OpenFile {
  handle: FileHandle
  size: number
  /** Identity of the file opened, to notice when the path is moved away (logrotate) or replaced. */
  dev: number
  ino: number
}

class FileSink extends QueuedSink {
  readonly type = 'file'
  private readonly files = new Map<string, OpenFile>()
  private readonly options: FileSinkOptions

  constructor (definition: SinkDefinition, options: FileSinkOptions, context: SinkContext) {
    super(definition, context)
    this.options = options
  }

  protected async connect (): Promise<void> {
    this.markUp()
  }

  protected async deliver (batch: Delivery[]): Promise<Rejection[]> {
    const rejected: Rejection[] = []
    // A run of consecutive messages for one path goes out in one write.
    for (const [start, end] of addressRuns(batch)) {
      const path = batch[start].address
      const lines = batch.slice(start, end).map((d) => this.encode(d))
      try {
        await this.append(path, lines)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? ''
        const message = `cannot write ${path}: ${(err as Error).message}`
        // Reopen on the next attempt: the file may have been replaced, or the disk freed.
        await this.forget(path)
        if (!PERMANENT.has(code)) throw new DeliveryError(message, start, rejected, { cause: err })
        for (let k = start; k < end; k++) rejected.push({ index: k, reason: message })
      }
    }
    return rejected
  }

  protected async disconnect (): Promise<void> {
    const files = [...this.files.values()]
    this.files.clear()
    for (const f of files) {
      await f.handle.datasync().catch(() => {})
      await f.handle.close()
    }
  }

  private async forget (path: string): Promise<void> {
    const file = this.files.get(path)
    this.files.delete(path)
    await file?.handle.close().catch(() => {})
  }

  private encode (d: Delivery): Buffer {
    if (this.options.format === 'raw') return Buffer.concat([d.payload, NEWLINE])
    const record: Record<string, unknown> = { time: new Date(d.time).toISOString(), topic: d.topic, rule: d.rule }
    // A logged message's output: the same id after a replay, so a reader can drop the duplicate.
    if (d.id !== undefined) record.id = d.id
    try {
      record.payload = JSON.parse(d.payload.toString('utf8'))
    } catch {
      Object.assign(record, describePayload(d.payload))
    }
    return Buffer.from(JSON.stringify(record) + '\n')
  }

  /** Appends whole lines, rotating first when the next line would pass max_bytes. */
  private async append (path: string, lines: Buffer[]): Promise<void> {
    let file = await this.openFile(path)
    const max = this.options.max_bytes
    let start = 0
    while (start < lines.length) {
      if (max !== undefined && file.size > 0 && file.size + lines[start].length > max) {
        file = await this.rotate(path, file)
        continue
      }
      // As many lines as fit under max_bytes; at least one, so a line longer than the limit gets a file of its own.
      const room = max === undefined ? Infinity : max - file.size
      let end = start + 1
      let bytes = lines[start].length
      for (; end < lines.length && bytes + lines[end].length <= room; end++) bytes += lines[end].length
      await writeAll(file, Buffer.concat(lines.slice(start, end), bytes))
      start = end
    }
  }

  private async openFile (path: string): Promise<OpenFile> {
    const known = this.files.get(path)
    if (known !== undefined) {
      this.files.delete(path)
      const now = await stat(path).catch(() => undefined)
      if (now !== undefined && now.ino === known.ino && now.dev === known.dev) {
        // Most recently used last, so the first entry is the one to close when too many are open.
        this.files.set(path, known)
        return known
      }
      // Moved or deleted under us: write to the path, not to the file that used to be there.
      await known.handle.close().catch(() => {})
    }
    if (this.files.size >= MAX_OPEN_FILES) {
      const [oldest, f] = this.files.entries().next().value as [string, OpenFile]
      this.files.delete(oldest)
      await f.handle.close()
    }
    await mkdir(dirname(path), { recursive: true })
    const handle = await open(path, 'a')
    const st = await handle.stat()
    const file = { handle, size: st.size, dev: st.dev, ino: st.ino }
    this.files.set(path, file)
    return file
  }

  /** path → path.1 → … → path.<keep>; the oldest is overwritten. */
  private async rotate (path: string, file: OpenFile): Promise<OpenFile> {
    this.files.delete(path)
    await file.handle.close()
    for (let n = this.options.keep - 1; n >= 1; n--) {
      await rename(`${path}.${n}`, `${path}.${n + 1}`).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
    }
    await rename(path, `${path}.1`)
    this.logger.info({ path }, 'file rotated')
    return await this.openFile(path)
  }
}

const NEWLINE = Buffer.from('\n')

/** Writes the whole buffer; on failure, truncates back so no partial line stays in the file. */
async function writeAll (file: OpenFile, data: Buffer): Promise<void> {
  const before = file.size
  let offset = 0
  try {
    while (offset < data.length) {
      const { bytesWritten } = await file.handle.write(data, offset, data.length - offset)
      offset += bytesWritten
    }
  } catch (err) {
    if (offset > 0) await file.handle.truncate(before).catch(() => {})
    throw err
  }
  file.size = before + data.length
}

export const fileSinkType = typedSinkType<FileSinkOptions>(fileSinkSpec, (definition, options, context) => new FileSink(definition, options, context))
