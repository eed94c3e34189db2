#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm run build` (run by `npm install` through `prepare`).
import { main } from '../dist/engine/cli/cli.js'

// A user's or the machine's mistake comes back as an exit code with one line; anything thrown here
// is a bug: its stack, and exit code 70 (EX_SOFTWARE), so it is never mistaken for a bad rule.
main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err) => {
  process.stderr.write(`signalbox: internal error (a bug; please report it with this output):\n${err?.stack ?? String(err)}\n`)
  process.exitCode = 70
})
