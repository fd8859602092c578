import { isDeepStrictEqual } from 'node:util'
import type Database from 'better-sqlite3'
import type { UserId } from '../../core/user-id.js'
import type {
  Delivery,
  DeliveryState,
  QueuedEvent,
  Reclaimed,
  WebhookEventType,
  WebhookRecord,
  WebhookStore,
} from '../webhook-store.js'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhook_queue (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  type TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  last_attempt_at INTEGER,
  parked_at INTEGER
);
CREATE INDEX IF NOT EXISTS webhook_queue_by_webhook ON webhook_queue (webhook_id, parked_at, seq);
`

interface QueueRow {
  seq: number
  webhook_id: string
  event_id: string
  user_id: string
  type: WebhookEventType
  body: string
  created_at: number
  attempts: number
  last_error: string | null
  last_attempt_at: number | null
  parked_at: number | null
}

/** What has been claimed of one queue: every row up to `upTo`, and who holds the unfinished ones. */
interface Claims {
  upTo: number
  owners: Map<number, string>
}

/**
 * Webhooks in the embedded SQLite file (the profile store's database, shared: one file to back
 * up). A queue is the rows of its endpoint, ordered by an autoincrement `seq` that is never
 * reused, so queue order is insertion order even across restarts.
 *
 * Claims, leases and live nodes are kept in memory: this process is the file's only writer, so
 * there is no one to share them with, and a claim costs no write. A process killed mid-delivery
 * takes its claims with it: after a restart its unfinished rows are simply unclaimed, and are
 * claimed again first, in order. Deliveries finished together are deleted in one transaction.
 */
export class SqliteWebhookStore implements WebhookStore {
  readonly #db: Database.Database
  readonly #stmt
  readonly #leases = new Map<string, { owner: string; until: number }>()
  readonly #claims = new Map<string, Claims>()
  /** Finished deliveries waiting for the next batched delete. */
  #finished: Delivery[] = []
  #deleting: Promise<void> | undefined
  readonly #nodes = new Map<string, number>()
  /** Queued rows per endpoint, so enqueue can trim without counting. */
  readonly #queued = new Map<string, number>()
  readonly #enqueueAll: (events: readonly QueuedEvent[], maxQueued: number) => void

  constructor(db: Database.Database) {
    this.#db = db
    db.exec(SCHEMA)
    this.#stmt = {
      put: db.prepare(
        'INSERT INTO webhooks (id, record) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET record = excluded.record',
      ),
      get: db.prepare<[string], { record: string }>('SELECT record FROM webhooks WHERE id = ?'),
      list: db.prepare<[], { record: string }>('SELECT record FROM webhooks ORDER BY id'),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM webhooks'),
      delete: db.prepare('DELETE FROM webhooks WHERE id = ?'),
      deleteQueue: db.prepare('DELETE FROM webhook_queue WHERE webhook_id = ?'),
      insert: db.prepare(
        'INSERT INTO webhook_queue (webhook_id, event_id, user_id, type, body, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      trim: db.prepare(
        'DELETE FROM webhook_queue WHERE seq IN (SELECT seq FROM webhook_queue WHERE webhook_id = ? AND parked_at IS NULL ORDER BY seq LIMIT ?)',
      ),
      row: db.prepare<[number], QueueRow>(
        'SELECT * FROM webhook_queue WHERE seq = ? AND parked_at IS NULL',
      ),
      claim: db.prepare<[string, number, number], QueueRow>(
        'SELECT * FROM webhook_queue WHERE webhook_id = ? AND parked_at IS NULL AND seq > ? ORDER BY seq LIMIT ?',
      ),
      failure: db.prepare(
        'UPDATE webhook_queue SET attempts = ?, last_error = ?, last_attempt_at = ? WHERE seq = ? AND parked_at IS NULL',
      ),
      complete: db.prepare('DELETE FROM webhook_queue WHERE seq = ? AND parked_at IS NULL'),
      park: db.prepare(
        'UPDATE webhook_queue SET attempts = ?, last_error = ?, last_attempt_at = ?, parked_at = ? WHERE seq = ? AND parked_at IS NULL',
      ),
      queued: db.prepare<[string, number], QueueRow>(
        'SELECT * FROM webhook_queue WHERE webhook_id = ? AND parked_at IS NULL ORDER BY seq LIMIT ?',
      ),
      parked: db.prepare<[string, number], QueueRow>(
        'SELECT * FROM webhook_queue WHERE webhook_id = ? AND parked_at IS NOT NULL ORDER BY seq LIMIT ?',
      ),
      parkedIds: db.prepare<[string], { seq: number; event_id: string }>(
        'SELECT seq, event_id FROM webhook_queue WHERE webhook_id = ? AND parked_at IS NOT NULL ORDER BY seq',
      ),
      // a replayed event goes to the end of its queue: a new row, fresh attempts
      requeue: db.prepare(
        'INSERT INTO webhook_queue (webhook_id, event_id, user_id, type, body, created_at) SELECT webhook_id, event_id, user_id, type, body, created_at FROM webhook_queue WHERE seq = ?',
      ),
      deleteRow: db.prepare('DELETE FROM webhook_queue WHERE seq = ?'),
      counts: db.prepare<[string], { queued: number; parked: number }>(
        'SELECT COUNT(*) FILTER (WHERE parked_at IS NULL) AS queued, COUNT(*) FILTER (WHERE parked_at IS NOT NULL) AS parked FROM webhook_queue WHERE webhook_id = ?',
      ),
      queuedByWebhook: db.prepare<[], { webhook_id: string; n: number }>(
        'SELECT webhook_id, COUNT(*) AS n FROM webhook_queue WHERE parked_at IS NULL GROUP BY webhook_id',
      ),
    }
    for (const { webhook_id, n } of this.#stmt.queuedByWebhook.all()) {
      this.#queued.set(webhook_id, n)
    }
    this.#enqueueAll = db.transaction((events: readonly QueuedEvent[], maxQueued: number) => {
      const known = new Map<string, boolean>()
      const added = new Map<string, number>()
      for (const e of events) {
        let exists = known.get(e.webhookId)
        if (exists === undefined) {
          exists = this.#stmt.get.get(e.webhookId) !== undefined
          known.set(e.webhookId, exists)
        }
        if (!exists) continue
        this.#stmt.insert.run(e.webhookId, e.eventId, e.userId, e.type, e.body, e.createdAt)
        added.set(e.webhookId, (added.get(e.webhookId) ?? 0) + 1)
      }
      for (const [id, count] of added) {
        const queued = (this.#queued.get(id) ?? 0) + count
        const excess = queued - maxQueued
        if (excess > 0) this.#stmt.trim.run(id, excess)
        this.#queued.set(id, Math.min(queued, maxQueued))
      }
    })
  }

  putWebhook(record: WebhookRecord, max?: number): Promise<boolean> {
    // counted and written in one transaction, with nothing awaited between
    const stored = this.#db.transaction(() => {
      if (max !== undefined && !this.#stmt.get.get(record.id)) {
        if (this.#stmt.count.get()!.n >= max) return false
      }
      this.#stmt.put.run(record.id, JSON.stringify(record))
      return true
    })()
    return Promise.resolve(stored)
  }

  replaceWebhook(id: string, expected: WebhookRecord, next: WebhookRecord): Promise<boolean> {
    // one process owns the database and nothing awaits between the read and the write
    const row = this.#stmt.get.get(id)
    if (!row || !isDeepStrictEqual(JSON.parse(row.record), expected)) return Promise.resolve(false)
    this.#stmt.put.run(id, JSON.stringify(next))
    return Promise.resolve(true)
  }

  getWebhook(id: string): Promise<WebhookRecord | undefined> {
    const row = this.#stmt.get.get(id)
    return Promise.resolve(row ? (JSON.parse(row.record) as WebhookRecord) : undefined)
  }

  listWebhooks(): Promise<WebhookRecord[]> {
    return Promise.resolve(this.#stmt.list.all().map((r) => JSON.parse(r.record) as WebhookRecord))
  }

  deleteWebhook(id: string): Promise<boolean> {
    const deleted = this.#db.transaction(() => {
      this.#stmt.deleteQueue.run(id)
      return this.#stmt.delete.run(id).changes > 0
    })()
    this.#queued.delete(id)
    this.#leases.delete(id)
    this.#claims.delete(id)
    return Promise.resolve(deleted)
  }

  enqueue(events: readonly QueuedEvent[], maxQueued: number): Promise<void> {
    if (events.length > 0) this.#enqueueAll(events, maxQueued)
    return Promise.resolve()
  }

  acquireLease(webhookId: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = Date.now()
    const lease = this.#leases.get(webhookId)
    if (lease && lease.owner !== owner && lease.until > now) return Promise.resolve(false)
    this.#leases.set(webhookId, { owner, until: now + ttlMs })
    return Promise.resolve(true)
  }

  releaseLease(webhookId: string, owner: string): Promise<void> {
    if (this.#leases.get(webhookId)?.owner === owner) this.#leases.delete(webhookId)
    return Promise.resolve()
  }

  announceNode(node: string, ttlMs: number): Promise<number> {
    const now = Date.now()
    this.#nodes.set(node, now + ttlMs)
    for (const [id, until] of this.#nodes) if (until <= now) this.#nodes.delete(id)
    return Promise.resolve(this.#nodes.size)
  }

  reclaim(webhookId: string, owner: string, cursor: string, count: number): Promise<Reclaimed> {
    const { owners } = this.#claimsOf(webhookId)
    const after = Number(cursor) || 0
    const held = [...owners.keys()].filter((seq) => seq > after).sort((a, b) => a - b)
    const taken = held.slice(0, count)
    const deliveries: Delivery[] = []
    for (const seq of taken) {
      const row = this.#stmt.row.get(seq)
      if (row) {
        owners.set(seq, owner)
        deliveries.push(deliveryOf(row))
      } else owners.delete(seq)
    }
    const last = taken.at(-1)
    return Promise.resolve({
      deliveries,
      cursor: last !== undefined ? String(last) : cursor,
      done: held.length <= count,
    })
  }

  claim(webhookId: string, owner: string, count: number): Promise<Delivery[]> {
    const claims = this.#claimsOf(webhookId)
    const rows = this.#stmt.claim.all(webhookId, claims.upTo, count)
    for (const row of rows) claims.owners.set(row.seq, owner)
    const last = rows.at(-1)
    if (last) claims.upTo = last.seq
    return Promise.resolve(rows.map(deliveryOf))
  }

  recordFailure(d: Delivery): Promise<void> {
    this.#stmt.failure.run(d.attempts, d.lastError ?? null, d.lastAttemptAt ?? null, seqOf(d))
    return Promise.resolve()
  }

  complete(d: Delivery): Promise<void> {
    this.#claims.get(d.webhookId)?.owners.delete(seqOf(d))
    this.#finished.push(d)
    this.#deleting ??= new Promise((resolve, reject) =>
      setImmediate(() => {
        this.#deleting = undefined
        const finished = this.#finished
        this.#finished = []
        try {
          this.#deleteAll(finished)
          resolve()
        } catch (error) {
          reject(error as Error)
        }
      }),
    )
    return this.#deleting
  }

  park(d: Delivery): Promise<void> {
    this.#claims.get(d.webhookId)?.owners.delete(seqOf(d))
    const parked = this.#stmt.park.run(
      d.attempts,
      d.lastError ?? null,
      d.lastAttemptAt ?? null,
      d.parkedAt ?? Date.now(),
      seqOf(d),
    )
    if (parked.changes > 0) this.#count(d.webhookId, -1)
    return Promise.resolve()
  }

  listDeliveries(webhookId: string, state: DeliveryState, limit: number): Promise<Delivery[]> {
    const rows = (state === 'queued' ? this.#stmt.queued : this.#stmt.parked).all(webhookId, limit)
    return Promise.resolve(rows.map(deliveryOf))
  }

  replay(webhookId: string, eventIds?: readonly string[]): Promise<number> {
    const wanted = eventIds && new Set(eventIds)
    const replayed = this.#db.transaction(() => {
      let n = 0
      for (const row of this.#stmt.parkedIds.all(webhookId)) {
        if (wanted && !wanted.has(row.event_id)) continue
        this.#stmt.requeue.run(row.seq)
        this.#stmt.deleteRow.run(row.seq)
        n++
      }
      return n
    })()
    this.#count(webhookId, replayed)
    return Promise.resolve(replayed)
  }

  counts(webhookId: string): Promise<Record<DeliveryState, number>> {
    const row = this.#stmt.counts.get(webhookId)
    return Promise.resolve({ queued: row?.queued ?? 0, parked: row?.parked ?? 0 })
  }

  /** The database belongs to the profile store, which closes it. */
  close(): Promise<void> {
    return Promise.resolve()
  }

  #deleteAll(deliveries: readonly Delivery[]): void {
    this.#db.transaction(() => {
      for (const d of deliveries) {
        if (this.#stmt.complete.run(seqOf(d)).changes > 0) this.#count(d.webhookId, -1)
      }
    })()
  }

  #claimsOf(webhookId: string): Claims {
    let claims = this.#claims.get(webhookId)
    if (!claims) this.#claims.set(webhookId, (claims = { upTo: 0, owners: new Map() }))
    return claims
  }

  #count(webhookId: string, delta: number): void {
    this.#queued.set(webhookId, Math.max(0, (this.#queued.get(webhookId) ?? 0) + delta))
  }
}

function seqOf(delivery: Delivery): number {
  return Number(delivery.position)
}

function deliveryOf(row: QueueRow): Delivery {
  return {
    webhookId: row.webhook_id,
    eventId: row.event_id,
    userId: row.user_id as UserId,
    type: row.type,
    body: row.body,
    createdAt: row.created_at,
    position: String(row.seq),
    attempts: row.attempts,
    lastError: row.last_error ?? undefined,
    lastAttemptAt: row.last_attempt_at ?? undefined,
    parkedAt: row.parked_at ?? undefined,
  }
}
