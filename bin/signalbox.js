#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm run build` (run by `npm install` through `prepare`).
import { main } from '../dist/engine/cli/cli.js'

main(process.argv.slice(2)).then((code) => { process.exitCode = code })
