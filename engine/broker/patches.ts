/**
 * Signalbox's delivery guarantees rest on its changes to aedes, mqtt-packet and mqemitter
 * (patches/, applied by patch-package when the package is installed). An install whose scripts did
 * not run (npm's allow-scripts, --ignore-scripts, a copy made by hand) would start and silently
 * lose messages, so the broker checks, where each package is really loaded from, that its change
 * is there, and refuses to start otherwise.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

interface Marker {
  pkg: string
  file: string
  /** A line only the patched file has. */
  text: string
  /** The package whose copy of it aedes uses (resolved from there). */
  via?: string
}

const MARKERS: readonly Marker[] = [
  { pkg: 'aedes', file: 'lib/write.js', text: 'export function writeDelivery' },
  { pkg: 'mqemitter', file: 'mqemitter.js', text: 'while (starts > 0)', via: 'aedes' },
  { pkg: 'mqtt-packet', file: 'parser.js', text: 'this.maxPacketSize', via: 'aedes' }
]

/** The packages (with the file) whose signalbox change is missing; reads files through `read`. */
export function missingPatches (read: (marker: Marker) => string | undefined): string[] {
  return MARKERS.filter((m) => !(read(m)?.includes(m.text) ?? false)).map((m) => `${m.pkg}/${m.file}`)
}

/** The installed copies' missing changes: empty when every patch is applied. */
export function unpatchedDependencies (): string[] {
  return missingPatches((m) => {
    try {
      const from = m.via === undefined ? import.meta.url : packageDir(createRequire(import.meta.url), m.via) + '/'
      return readFileSync(join(packageDir(createRequire(from), m.pkg), m.file), 'utf8')
    } catch {
      return undefined
    }
  })
}

/** The directory of a package as `require` resolves it (its main file's nearest package.json of that name). */
function packageDir (require: NodeJS.Require, pkg: string): string {
  let dir = dirname(require.resolve(pkg))
  for (;;) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === pkg) return dir
    } catch {
      // No package.json here: look higher.
    }
    const up = dirname(dir)
    if (up === dir) throw new Error(`cannot find the directory of ${pkg}`)
    dir = up
  }
}
