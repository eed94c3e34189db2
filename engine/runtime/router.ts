/**
 * All rule filters compiled into one trie: a map per level, with '+' and '#' branches.
 * A lookup walks the topic once; its cost follows the topic's depth, not the number of filters.
 * Results are cached per topic, with a bound: devices publish to the same topics again and again.
 */

/**
 * Topics a cache generation holds. A site with up to this many live topics always hits the newer
 * generation; the cache holds at most twice this. A new rule set starts a new cache.
 */
export const DEFAULT_CACHE_SIZE = 10_000

/** A trie node; its parts are allocated only when used, since most nodes of a large rule set have one child. */
interface Node<T> {
  /** The only exact-level child, while there is one: no Map for the long single-child chains. */
  onlyKey: string | undefined
  only: Node<T> | undefined
  /** Exact-level children, once there are two or more. */
  children: Map<string, Node<T>> | undefined
  plus: Node<T> | undefined
  /** Values whose filter ends with '#' at this node. */
  hash: Array<Entry<T>> | undefined
  /** Values whose filter ends exactly at this node. */
  exact: Array<Entry<T>> | undefined
}

interface Entry<T> {
  value: T
  order: number
}

function createNode<T> (): Node<T> {
  return { onlyKey: undefined, only: undefined, children: undefined, plus: undefined, hash: undefined, exact: undefined }
}

/** Matches topics against a fixed set of plain MQTT filters. Build a new one to change the set. */
export class Router<T> {
  private readonly root: Node<T> = createNode()
  private count = 0
  // Two generations instead of an LRU list: a hit in the old one moves to the new one, and when the
  // new one is full the old one is dropped whole. O(1) per lookup, no per-entry bookkeeping (deleting
  // single keys from a big Map leaves holes that make finding its oldest key slow).
  private recent = new Map<string, readonly T[]>()
  private older = new Map<string, readonly T[]>()

  constructor (private readonly cacheSize = DEFAULT_CACHE_SIZE) {}

  /** Adds a value under a valid plain MQTT filter (captures already stripped). */
  add (filter: string, value: T): void {
    // Cached lookups may miss the new filter. (Only when there are any: a rule set adds thousands in a row.)
    if (this.recent.size > 0 || this.older.size > 0) {
      this.recent = new Map()
      this.older = new Map()
    }
    const entry = { value, order: this.count++ }
    let node = this.root
    const levels = filter.split('/')
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]
      if (level === '#') { (node.hash ??= []).push(entry); return }
      if (level === '+') {
        node.plus ??= createNode()
        node = node.plus
      } else {
        node = childFor(node, level)
      }
    }
    (node.exact ??= []).push(entry)
  }

  /** Number of filters added. */
  get size (): number {
    return this.count
  }

  /** Every value whose filter matches the topic, in the order they were added. The array is shared: do not change it. */
  match (topic: string): readonly T[] {
    let result = this.recent.get(topic)
    if (result !== undefined) return result
    result = this.older.get(topic) ?? this.lookup(topic)
    if (this.cacheSize > 0) {
      if (this.recent.size >= this.cacheSize) {
        this.older = this.recent
        this.recent = new Map()
      }
      this.recent.set(topic, result)
    }
    return result
  }

  /** The trie walk, uncached. */
  lookup (topic: string): T[] {
    const found: Array<Entry<T>> = []
    // [MQTT-4.7.2-1] a filter starting with a wildcard never matches a topic starting with '$'.
    const dollar = topic.charCodeAt(0) === 36
    walk(this.root, topic, 0, found, dollar)
    if (found.length > 1) found.sort((a, b) => a.order - b.order)
    const out = new Array<T>(found.length)
    for (let i = 0; i < found.length; i++) out[i] = found[i].value
    return out
  }
}

/** The exact-level child for `level`, made if missing; a second child moves them into a Map. */
function childFor<T> (node: Node<T>, level: string): Node<T> {
  if (node.children !== undefined) {
    let child = node.children.get(level)
    if (child === undefined) { child = createNode(); node.children.set(level, child) }
    return child
  }
  if (node.onlyKey === level) return node.only!
  const child = createNode<T>()
  if (node.onlyKey === undefined) {
    node.onlyKey = level
    node.only = child
  } else {
    node.children = new Map([[node.onlyKey, node.only!], [level, child]])
    node.onlyKey = undefined
    node.only = undefined
  }
  return child
}

/** Visits the level of `topic` that starts at `start`; `dollar` bars the wildcards of the first level. */
function walk<T> (node: Node<T>, topic: string, start: number, found: Array<Entry<T>>, dollar: boolean): void {
  if (!dollar && node.hash !== undefined) for (const e of node.hash) found.push(e)
  const slash = topic.indexOf('/', start)
  const end = slash < 0 ? topic.length : slash
  let child: Node<T> | undefined
  if (node.children !== undefined) {
    child = node.children.get(topic.slice(start, end))
  } else if (node.onlyKey !== undefined && node.onlyKey.length === end - start && topic.startsWith(node.onlyKey, start)) {
    child = node.only
  }
  if (child !== undefined) descend(child, topic, slash, found)
  if (node.plus !== undefined && !dollar) descend(node.plus, topic, slash, found)
}

function descend<T> (node: Node<T>, topic: string, slash: number, found: Array<Entry<T>>): void {
  if (slash >= 0) {
    walk(node, topic, slash + 1, found, false)
    return
  }
  // The topic ends here: exact filters match, and so does 'x/#' ('#' also matches the parent level).
  if (node.exact !== undefined) for (const e of node.exact) found.push(e)
  if (node.hash !== undefined) for (const e of node.hash) found.push(e)
}
