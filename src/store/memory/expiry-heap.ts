/**
 * A binary min-heap of (expiresAt, userId, key): each expiry costs O(log n), never a scan.
 * Entries are not removed when a session is refreshed; a popped entry whose session has since
 * moved its expiresAt is stale and skipped by the caller.
 */
export interface ExpiryEntry {
  at: number
  userId: string
  key: string
}

export class ExpiryHeap {
  readonly #items: ExpiryEntry[] = []

  get size(): number {
    return this.#items.length
  }

  push(entry: ExpiryEntry): void {
    const items = this.#items
    items.push(entry)
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (items[parent]!.at <= entry.at) break
      items[i] = items[parent]!
      i = parent
    }
    items[i] = entry
  }

  peek(): ExpiryEntry | undefined {
    return this.#items[0]
  }

  pop(): ExpiryEntry | undefined {
    const items = this.#items
    const top = items[0]
    const last = items.pop()
    if (top === undefined || last === undefined || items.length === 0) return top
    let i = 0
    const n = items.length
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && items[right]!.at < items[left]!.at ? right : left
      if (items[child]!.at >= last.at) break
      items[i] = items[child]!
      i = child
    }
    items[i] = last
    return top
  }
}
