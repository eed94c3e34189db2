// Payload decoding: JSON.parse of the whole payload (decodePayload) against the payload picker,
// which builds only the fields the rules read, on the same payloads, interleaved runs in one
// process, medians reported. Payloads are generated from a seed: the broker bench's ~93-byte
// message (the rules read 3 of its 4 fields) and a ~690-byte device report (the same 3 of 10
// fields, with a nested device and 12 readings). Run alone with `npm run bench -- decode`.
import { shipped } from './shipped.js'
import { fmt, machine, median, quick } from './stats.js'
import { random } from './workload.js'

const { decodePayload } = await shipped<typeof import('../engine/runtime/decode.js')>('engine/runtime/decode.js')
const { PayloadPicker } = await shipped<typeof import('../engine/runtime/payload-picker.js')>('engine/runtime/payload-picker.js')

const RUNS = quick ? 3 : 5
const ITERATIONS = quick ? 200_000 : 1_000_000
const DISTINCT = 1000
const FIELDS = ['seq', 'value', 't']

const rnd = random(23)
const now = 1_796_149_766_541.737
const payloads: Array<{ name: string, messages: Buffer[] }> = [
  {
    name: 'broker bench message',
    messages: Array.from({ length: DISTINCT }, (_, i) => Buffer.from(JSON.stringify({ seq: i, value: Math.floor(rnd() * 100), t: now + rnd() * 1000, pad: 'x'.repeat(40) })))
  },
  {
    name: 'device report',
    messages: Array.from({ length: DISTINCT }, (_, i) => Buffer.from(JSON.stringify({
      seq: i,
      value: Math.floor(rnd() * 100),
      t: now + rnd() * 1000,
      device: { id: `dev-${i}`, fw: '1.2.3', model: 'TH-200' },
      readings: Array.from({ length: 12 }, (_, ch) => ({ ch, v: rnd() * 100, ok: rnd() < 0.9 })),
      site: 'plant-north',
      line: 'L4',
      status: 'nominal',
      battery: Math.floor(rnd() * 100),
      rssi: -Math.floor(rnd() * 90)
    })))
  }
]

function nsPerDecode (messages: Buffer[], decode: (b: Buffer) => { json: boolean }): number {
  let taken = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < ITERATIONS; i++) if (decode(messages[i % DISTINCT]).json) taken++
  const ns = Number(process.hrtime.bigint() - start)
  if (taken !== ITERATIONS) throw new Error('a generated payload did not decode')
  return ns / ITERATIONS
}

console.log(`# Payload decoding: JSON.parse of the whole payload vs the picker (only ${FIELDS.join(', ')}) (${machine()}; ${DISTINCT} distinct payloads, medians of ${RUNS} interleaved runs of ${fmt(ITERATIONS)})`)
console.log('| payload | bytes | JSON.parse (decodePayload) ns | picker ns | picker ÷ JSON.parse time |')
console.log('| --- | ---: | ---: | ---: | ---: |')
for (const { name, messages } of payloads) {
  const picker = new PayloadPicker(FIELDS, 64)
  // Same values before timing: a faster wrong answer is no answer.
  for (const m of messages) {
    const whole = decodePayload(m, 64).value as Record<string, unknown>
    const picked = picker.decode(m).value as Record<string, unknown>
    for (const f of FIELDS) if (!Object.is(whole[f], picked[f])) throw new Error(`picker read ${f} differently in ${m.toString()}`)
  }
  const full: number[] = []
  const pick: number[] = []
  for (let r = 0; r < RUNS; r++) {
    full.push(nsPerDecode(messages, (b) => decodePayload(b, 64)))
    pick.push(nsPerDecode(messages, (b) => picker.decode(b)))
  }
  const bytes = Math.round(messages.reduce((n, m) => n + m.length, 0) / messages.length)
  console.log(`| ${name} | ${bytes} | ${fmt(median(full))} | ${fmt(median(pick))} | ${(median(pick) / median(full)).toFixed(2)} |`)
}
