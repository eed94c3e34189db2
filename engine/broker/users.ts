/**
 * The users file: user names with scrypt-hashed passwords (never plain text), checked when a client
 * connects. `signalbox passwd` writes it; `signalbox run` reloads it when it changes.
 *
 *   users:
 *     alice: scrypt$16384$8$1$<salt, base64>$<hash, base64>
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { isMap, parseDocument } from 'yaml'
import type { ValidateFunction } from 'ajv'
import { loadSource, problemAt } from '../../rules/source/load.js'
import type { RuleProblem } from '../../rules/check/problems.js'
import { createValidator, validateSource } from '../../rules/check/validate.js'

const COST = { N: 16384, r: 8, p: 1 }
const KEY_LENGTH = 32
const HASH = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/
/** User names go into ACL filters as %u: these characters would change a filter's meaning ('%' would name %c). */
const USER_NAME = /^[^\s/+#%]+$/

const usersSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['users'],
  properties: {
    users: {
      type: 'object',
      description: 'User name → scrypt hash, as `signalbox passwd` writes it.',
      additionalProperties: { type: 'string', pattern: HASH.source, patternMessage: 'is not a password hash: write it with `signalbox passwd`' }
    }
  }
}

let validator: ValidateFunction | undefined

/** A hash in the users-file format, of a password. */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(Buffer.from(password, 'utf8'), salt, COST)
  return `scrypt$${COST.N}$${COST.r}$${COST.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

function derive (password: Buffer, salt: Buffer, cost: { N: number, r: number, p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...cost, maxmem: 256 * cost.N * cost.r * cost.p }
  return new Promise((resolve, reject) => scrypt(password, salt, KEY_LENGTH, options, (err, key) => { if (err !== null) reject(err); else resolve(key) }))
}

/** Checks a user name for `signalbox passwd`; undefined when fine. */
export function userNameProblem (name: string): string | undefined {
  return USER_NAME.test(name) ? undefined : `user name '${name}' must not be empty or hold whitespace, '/', '+', '#' or '%'`
}

export class UserStore {
  private users = new Map<string, string>()
  /** Compared against for an unknown user, so a reply takes as long whether or not the user exists. */
  private readonly decoy: Promise<string> = hashPassword(randomBytes(16).toString('hex'))

  constructor (readonly file: string) {}

  get size (): number {
    return this.users.size
  }

  /** Reads the file; on problems the users loaded before stay in place. */
  load (): RuleProblem[] {
    const loaded = loadSource(this.file)
    if (!loaded.ok) return loaded.problems
    validator ??= createValidator(usersSchema)
    if (loaded.source.data === null) return [problemAt(loaded.source, [], 'MISSING_FIELD', "missing field 'users'")]
    const problems = validateSource(loaded.source, validator)
    if (problems.length > 0) return problems
    const users = (loaded.source.data as { users: Record<string, string> }).users
    for (const name of Object.keys(users)) {
      const why = userNameProblem(name)
      if (why !== undefined) problems.push(problemAt(loaded.source, ['users', name], 'BAD_VALUE', why, { atKey: true }))
    }
    if (problems.length > 0) return problems
    this.users = new Map(Object.entries(users))
    return []
  }

  /**
   * Reads the file again. Returns its problems (the users loaded before stay), or the users whose
   * access it took away: removed, or given another password. Their connections are theirs no more.
   */
  reload (): { problems: RuleProblem[], revoked: string[] } {
    const before = this.users
    const problems = this.load()
    if (problems.length > 0) return { problems, revoked: [] }
    return { problems, revoked: [...before].filter(([name, hash]) => this.users.get(name) !== hash).map(([name]) => name) }
  }

  /** The hash a user connects with now; a check that started before a reload compares against it. */
  hashOf (username: string): string | undefined {
    return this.users.get(username)
  }

  async verify (username: string, password: Buffer): Promise<boolean> {
    const stored = this.users.get(username)
    const hash = stored ?? await this.decoy
    const m = HASH.exec(hash)
    if (m === null) return false
    const expected = Buffer.from(m[5], 'base64')
    const key = await derive(password, Buffer.from(m[4], 'base64'), { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) })
    return key.length === expected.length && timingSafeEqual(key, expected) && stored !== undefined
  }
}

/** Sets (or, with `hash` undefined, removes) a user in the file, keeping its comments; writes atomically, mode 0600. */
export function writeUser (file: string, name: string, hash: string | undefined): 'added' | 'changed' | 'removed' | 'absent' {
  const doc = parseDocument(existsSync(file) ? readFileSync(file, 'utf8') : '# Signalbox users: manage with `signalbox passwd FILE USER`\nusers:\n')
  if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`)
  if (!isMap(doc.get('users'))) doc.set('users', doc.createNode({}))
  const had = doc.hasIn(['users', name])
  if (hash === undefined) {
    if (!had) return 'absent'
    doc.deleteIn(['users', name])
  } else {
    doc.setIn(['users', name], hash)
  }
  const temp = `${file}.${process.pid}.tmp`
  writeFileSync(temp, doc.toString(), { mode: 0o600 })
  renameSync(temp, file)
  return hash === undefined ? 'removed' : had ? 'changed' : 'added'
}
