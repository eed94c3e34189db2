/**
 * All rule filters compiled into one trie: a map per level, with '+' and '#' branches.
 * A lookup walks the topic once; its cost follows the topic's depth, not the number of filters.
 */

interface Node<T> {
  /** Exact-level children. */
  children: Map<string, Node<T>>
  plus: Node<T> | undefined
  /** Values whose filter ends with '#' at this node. */
  hash: Array<Entry<T>>
  /** Values whose filter ends exactly at this node. */
  exact: Array<Entry<T>>
}

interface Entry<T> {
  value: T
  order: number
}

function createNode<T> (): Node<T> {
  return { children: new Map(), plus: undefined, hash: [], exact: [] }
}

/** Matches topics against a fixed set of plain MQTT filters. Build a new one to change the set. */
export class Router<T> {
  private readonly root: Node<T> = createNode()
  private count = 0

  /** Adds a value under a valid plain MQTT filter (captures already stripped). */
  add (filter: string, value: T): void {
    const entry = { value, order: this.count++ }
    let node = this.root
    const levels = filter.split('/')
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]
      if (level === '#') { node.hash.push(entry); return }
      if (level === '+') {
        node.plus ??= createNode()
        node = node.plus
      } else {
        let child = node.children.get(level)
        if (child === undefined) { child = createNode(); node.children.set(level, child) }
        node = child
      }
    }
    node.exact.push(entry)
  }

  /** Number of filters added. */
  get size (): number {
    return this.count
  }

  /** Every value whose filter matches the topic, in the order they were added. */
  match (topic: string): T[] {
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

/** Visits the level of `topic` that starts at `start`; `dollar` bars the wildcards of the first level. */
function walk<T> (node: Node<T>, topic: string, start: number, found: Array<Entry<T>>, dollar: boolean): void {
  if (!dollar) for (const e of node.hash) found.push(e)
  const slash = topic.indexOf('/', start)
  const end = slash < 0 ? topic.length : slash
  const child = node.children.size > 0 ? node.children.get(topic.slice(start, end)) : undefined
  if (child !== undefined) descend(child, topic, slash, found)
  if (node.plus !== undefined && !dollar) descend(node.plus, topic, slash, found)
}

function descend<T> (node: Node<T>, topic: string, slash: number, found: Array<Entry<T>>): void {
  if (slash >= 0) {
    walk(node, topic, slash + 1, found, false)
    return
  }
  // The topic ends here: exact filters match, and so does 'x/#' ('#' also matches the parent level).
  for (const e of node.exact) found.push(e)
  for (const e of node.hash) found.push(e)
}
