/**
 * Reads a password for `signalbox passwd`: from a pipe (`echo secret | signalbox passwd …`), or on
 * a terminal by asking twice without echoing it. Never from argv, where other users could see it.
 */
import { createInterface } from 'node:readline'
import { UsageError } from '../runtime/errors.js'

interface PromptIo {
  err: (text: string) => void
}

export async function readPassword (io: PromptIo, input: NodeJS.ReadStream = process.stdin): Promise<string> {
  if (input.isTTY !== true) return await readAll(input)
  const first = await ask('Password: ', input, io)
  const second = await ask('Again: ', input, io)
  if (first !== second) throw new UsageError('the passwords do not match')
  return first
}

/** The whole of a piped stdin, without its last line break. */
async function readAll (input: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of input) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

function ask (question: string, input: NodeJS.ReadStream, io: PromptIo): Promise<string> {
  return new Promise((resolve) => {
    io.err(question)
    // Echo is left off: readline's output goes nowhere, and the line break is written by hand.
    const rl = createInterface({ input, output: undefined, terminal: true })
    rl.once('line', (line) => { rl.close(); io.err('\n'); resolve(line) })
  })
}
