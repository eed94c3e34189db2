/**
 * Topic ACLs for the embedded broker, in the spirit of Mosquitto's: per user, for anonymous
 * clients, and for all clients, each a list of allow/deny entries on topic filters with `%u`
 * (user name) and `%c` (client id). The first entry that applies decides; with an ACL configured,
 * what no entry allows is denied.
 *
 * `publish` governs what a client may publish. `subscribe` governs SUBSCRIBE (the filter must lie
 * inside an allowed filter) and every message delivered to the client (its topic must be allowed),
 * so a broad subscription, or a rule that republishes, cannot carry what a deny entry forbids.
 */
import { problemAt, type DataPath, type SourceFile } from '../../rules/source/load.js'
import { validateFilter } from '../../rules/model/pattern.js'
import type { RuleProblem } from '../../rules/check/problems.js'
import { topicMatches } from '../../rules/model/pattern.js'

export type AclAction = 'publish' | 'subscribe'

export interface Identity {
  /** null for an anonymous client. */
  username: string | null
  clientId: string
}

interface Entry {
  allow: boolean
  actions: ReadonlySet<AclAction>
  /** The filter as written, with %u and %c. */
  filter: string
  /** Split levels when the filter has no substitution. */
  levels: string[] | undefined
}

const actionList = { enum: ['publish', 'subscribe'] }
const actions = {
  type: ['string', 'array'],
  description: '`publish`, `subscribe`, or a list of both.',
  if: { type: 'string' },
  then: actionList,
  else: { items: actionList, minItems: 1 }
}
const entry = {
  type: 'object',
  additionalProperties: false,
  required: ['topic'],
  description: 'One entry: `allow` or `deny`, the actions, and a topic filter (`%u` is the user name, `%c` the client id).',
  properties: { allow: actions, deny: actions, topic: { type: 'string', minLength: 1 } }
}
const entries = { type: 'array', items: entry }

export const aclSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Topic ACLs. The first entry that applies decides: a user\'s own entries, then `all`; for anonymous clients, `anonymous`, then `all`. With an ACL, whatever no entry allows is denied.',
  properties: {
    users: { type: 'object', additionalProperties: entries, description: 'Entries per user name.' },
    anonymous: { ...entries, description: 'Entries for clients without a user name.' },
    all: { ...entries, description: 'Entries for every client, after its own.' }
  }
}

interface RawEntry { allow?: AclAction | AclAction[], deny?: AclAction | AclAction[], topic: string }
interface RawAcl { users?: Record<string, RawEntry[]>, anonymous?: RawEntry[], all?: RawEntry[] }

export class Acl {
  private constructor (
    private readonly users: ReadonlyMap<string, Entry[]>,
    private readonly anonymous: Entry[],
    private readonly all: Entry[]
  ) {}

  /** Compiles the `acl:` of a config file (already valid against aclSchema); problems carry file:line:col. */
  static compile (source: SourceFile, raw: RawAcl, path: DataPath): { acl: Acl, problems: RuleProblem[] } {
    const problems: RuleProblem[] = []
    const list = (items: RawEntry[] | undefined, at: DataPath): Entry[] => (items ?? []).flatMap((e, i) => {
      const compiled = compileEntry(source, e, [...at, i], problems)
      return compiled === undefined ? [] : [compiled]
    })
    const users = new Map(Object.entries(raw.users ?? {}).map(([name, items]) => [name, list(items, [...path, 'users', name])]))
    return { acl: new Acl(users, list(raw.anonymous, [...path, 'anonymous']), list(raw.all, [...path, 'all'])), problems }
  }

  canPublish (who: Identity, topic: string): boolean {
    return this.decide(who, 'publish', (filter) => topicMatches(filter, topic))
  }

  /** Whether a message on `topic` may be delivered to this client. */
  canRead (who: Identity, topic: string): boolean {
    return this.decide(who, 'subscribe', (filter) => topicMatches(filter, topic))
  }

  /** Whether the client may subscribe to `filter`: an entry applies when its filter covers every topic `filter` can match. */
  canSubscribe (who: Identity, filter: string): boolean {
    return this.decide(who, 'subscribe', (aclFilter) => covers(aclFilter, filter.split('/')))
  }

  private decide (who: Identity, action: AclAction, applies: (levels: string[]) => boolean): boolean {
    const own = who.username === null ? this.anonymous : (this.users.get(who.username) ?? [])
    for (const list of [own, this.all]) {
      for (const e of list) {
        if (!e.actions.has(action)) continue
        const levels = e.levels ?? substitute(e.filter, who)
        if (levels !== undefined && applies(levels)) return e.allow
      }
    }
    return false
  }
}

function compileEntry (source: SourceFile, raw: RawEntry, path: DataPath, problems: RuleProblem[]): Entry | undefined {
  if ((raw.allow === undefined) === (raw.deny === undefined)) {
    problems.push(problemAt(source, path, 'BAD_VALUE', 'an ACL entry has exactly one of `allow` or `deny`'))
    return undefined
  }
  const given = raw.allow ?? raw.deny!
  const filter = raw.topic
  const error = validateFilter(filter.replaceAll('%u', 'u').replaceAll('%c', 'c'))
  if (error !== undefined) {
    problems.push(problemAt(source, [...path, 'topic'], 'BAD_FILTER', `invalid ACL filter '${filter}': ${error.message}`))
    return undefined
  }
  const hasVariables = filter.includes('%u') || filter.includes('%c')
  return { allow: raw.allow !== undefined, actions: new Set(Array.isArray(given) ? given : [given]), filter, levels: hasVariables ? undefined : filter.split('/') }
}

/**
 * Fills %u and %c in one pass, so a value is never read again as a pattern. A value that is empty
 * or holds '/', '+', '#' or '%' would widen the filter (or, filled in first, name the other
 * variable), so the entry does not apply (and %u never applies to an anonymous client).
 */
function substitute (filter: string, who: Identity): string[] | undefined {
  if (filter.includes('%u') && !usable(who.username)) return undefined
  if (filter.includes('%c') && !usable(who.clientId)) return undefined
  return filter.replace(/%[uc]/g, (v) => v === '%u' ? who.username! : who.clientId).split('/')
}

/** Whether a user name or client id may fill a %u or %c: non-empty, and nothing that acts as a pattern. */
function usable (value: string | null): value is string {
  return value !== null && value !== '' && !/[/+#%]/.test(value)
}

/** Whether every topic `sub` can match also matches `acl`. */
export function covers (acl: string[], sub: string[]): boolean {
  if ((acl[0] === '+' || acl[0] === '#') && sub[0].startsWith('$')) return false
  for (let i = 0; i < acl.length; i++) {
    if (acl[i] === '#') return true
    if (i >= sub.length || sub[i] === '#') return false
    if (acl[i] !== '+' && acl[i] !== sub[i]) return false
  }
  return acl.length === sub.length
}
