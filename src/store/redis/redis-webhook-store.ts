import { readFileSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import type { Result } from 'ioredis'
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
import type { RedisKeys } from './keys.js'
import type { RedisConnection } from './redis-connection.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** 1 when the queue was created, 0 when it had its group already */
    presencedWebhookQueue(queue: string, group: string): Result<number, Context>
    /** 1 once stored; 0 when the cap refused a new record */
    presencedWebhookCreate(
      webhooks: string,
      id: string,
      json: string,
      max: string,
    ): Result<number, Context>
    /** 1 once replaced; else the stored text, or null when there is none */
    presencedWebhookReplace(
      webhooks: string,
      id: string,
      expected: string,
      next: string,
    ): Result<number | string | null, Context>
    presencedWebhookFail(
      queue: string,
      attempts: string,
      position: string,
      json: string,
    ): Result<number, Context>
    presencedWebhookPark(
      queue: string,
      attempts: string,
      parked: string,
      group: string,
      position: string,
      eventId: string,
      json: string,
    ): Result<number, Context>
    presencedWebhookReplay(
      parked: string,
      queue: string,
      ...eventIds: string[]
    ): Result<number, Context>
  }
}

const GROUP = 'presenced'

function lua(name: string): string {
  return readFileSync(new URL(`./scripts/${name}`, import.meta.url), 'utf8')
}

/** A stream entry as ioredis returns it: id, then field, value, field, value… */
type Entry = [id: string, fields: string[]]

/** Failed attempts of a claimed delivery, kept beside its stream entry. */
interface Attempts {
  n: number
  err?: string
  at?: number
}

/**
 * Webhooks in Redis, for a fleet. Each endpoint's queue is a stream read through one consumer
 * group: a node claims new entries with XREADGROUP (they enter its pending list), acknowledges
 * and deletes each once delivered or parked, and a node taking the endpoint over after another
 * died claims the dead node's pending entries with XAUTOCLAIM, in entry order.
 *
 * Who may claim is decided by a lease per endpoint (SET NX PX, extended by its holder): one node
 * delivers an endpoint at a time, which is what keeps each user's events in order across nodes.
 *
 * Keys of one endpoint share the hash tag `{w:<id>}`, so parking (and recording a failed attempt)
 * is one script on one slot, which does nothing once the endpoint is deleted; endpoints spread
 * over a cluster's slots.
 */
export class RedisWebhookStore implements WebhookStore {
  readonly #connection: RedisConnection
  readonly #prefix: string
  /** Finished deliveries waiting for the next batch: one MULTI per endpoint per tick. */
  #finished: Delivery[] = []
  #completing: Promise<void> | undefined

  constructor(connection: RedisConnection, keys: RedisKeys) {
    this.#connection = connection.retain()
    this.#prefix = keys.prefix
    const client = connection.client
    client.defineCommand('presencedWebhookQueue', {
      numberOfKeys: 1,
      lua: lua('webhook-queue.lua'),
    })
    client.defineCommand('presencedWebhookCreate', {
      numberOfKeys: 1,
      lua: lua('webhook-create.lua'),
    })
    client.defineCommand('presencedWebhookReplace', {
      numberOfKeys: 1,
      lua: lua('webhook-replace.lua'),
    })
    client.defineCommand('presencedWebhookFail', {
      numberOfKeys: 2,
      lua: lua('webhook-fail.lua'),
    })
    client.defineCommand('presencedWebhookPark', {
      numberOfKeys: 3,
      lua: lua('webhook-park.lua'),
    })
    client.defineCommand('presencedWebhookReplay', {
      numberOfKeys: 2,
      lua: lua('webhook-replay.lua'),
    })
  }

  get #client() {
    return this.#connection.client
  }

  /** Hash: webhook id → WebhookRecord JSON. */
  #webhooks(): string {
    return `${this.#prefix}:webhooks`
  }

  /** Zset of delivering nodes scored by when their announcement lapses. */
  #nodes(): string {
    return `${this.#prefix}:wh:nodes`
  }

  #key(id: string, kind: 'q' | 'try' | 'parked' | 'lease'): string {
    return `${this.#prefix}:wh:{w:${id}}:${kind}`
  }

  putWebhook(record: WebhookRecord, max?: number): Promise<boolean> {
    return this.#connection.run(async () => {
      // the queue first, so that a stored endpoint always has one (enqueue never creates it)
      const queue = this.#key(record.id, 'q')
      const created = (await this.#client.presencedWebhookQueue(queue, GROUP)) === 1
      // counted and written in one script (the records are one key, so one slot of a cluster)
      const stored = await this.#client.presencedWebhookCreate(
        this.#webhooks(),
        record.id,
        JSON.stringify(record),
        max === undefined ? '' : String(max),
      )
      if (stored === 1) return true
      // refused: the queue made for it belongs to no endpoint
      if (created) await this.#client.del(queue)
      return false
    })
  }

  replaceWebhook(id: string, expected: WebhookRecord, next: WebhookRecord): Promise<boolean> {
    const text = JSON.stringify(next)
    return this.#connection.run(async () => {
      let expectedText = JSON.stringify(expected)
      // a second try when the stored text says the same in other words (another version wrote it)
      for (let attempt = 0; attempt < 2; attempt++) {
        const stored = await this.#client.presencedWebhookReplace(
          this.#webhooks(),
          id,
          expectedText,
          text,
        )
        if (stored === 1) return true
        if (typeof stored !== 'string' || stored === expectedText) return false
        if (!isDeepStrictEqual(JSON.parse(stored), expected)) return false
        expectedText = stored
      }
      return false
    })
  }

  getWebhook(id: string): Promise<WebhookRecord | undefined> {
    return this.#connection.run(async () => {
      const key = this.#webhooks()
      const raw = await this.#connection.read('hget', [key, id], (c) => c.hget(key, id))
      return raw ? (JSON.parse(raw) as WebhookRecord) : undefined
    })
  }

  listWebhooks(): Promise<WebhookRecord[]> {
    return this.#connection.run(async () => {
      const all = await this.#hgetall(this.#webhooks())
      return Object.values(all)
        .map((raw) => JSON.parse(raw) as WebhookRecord)
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    })
  }

  deleteWebhook(id: string): Promise<boolean> {
    return this.#connection.run(async () => {
      const removed = await this.#client.hdel(this.#webhooks(), id)
      await this.#client.del(
        this.#key(id, 'q'),
        this.#key(id, 'try'),
        this.#key(id, 'parked'),
        this.#key(id, 'lease'),
      )
      return removed > 0
    })
  }

  enqueue(events: readonly QueuedEvent[], maxQueued: number): Promise<void> {
    if (events.length === 0) return Promise.resolve()
    const max = String(maxQueued)
    // issued in order on one connection: an endpoint's entries keep the order given. NOMKSTREAM:
    // an event racing the deletion of its endpoint must not recreate a queue nobody reads.
    return this.#connection.run(async () => {
      await Promise.all(
        events.map((e) =>
          this.#client.xadd(
            this.#key(e.webhookId, 'q'),
            'NOMKSTREAM',
            'MAXLEN',
            max,
            '*',
            'e',
            e.eventId,
            'u',
            e.userId,
            't',
            e.type,
            'c',
            String(e.createdAt),
            'b',
            e.body,
          ),
        ),
      )
    })
  }

  acquireLease(webhookId: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.#connection.run(
      async () =>
        (await this.#client.presencedLease(this.#key(webhookId, 'lease'), owner, String(ttlMs))) ===
        1,
    )
  }

  releaseLease(webhookId: string, owner: string): Promise<void> {
    return this.#connection.run(async () => {
      await this.#client.presencedLeaseRelease(this.#key(webhookId, 'lease'), owner)
    })
  }

  announceNode(node: string, ttlMs: number): Promise<number> {
    const key = this.#nodes()
    const now = Date.now()
    return this.#connection.run(async () => {
      const [, , count] = await Promise.all([
        this.#client.zadd(key, now + ttlMs, node),
        this.#client.zremrangebyscore(key, '-inf', now),
        this.#client.zcard(key),
      ])
      return count
    })
  }

  reclaim(webhookId: string, owner: string, cursor: string, count: number): Promise<Reclaimed> {
    const queue = this.#key(webhookId, 'q')
    return this.#connection.run(async () => {
      let reply: [string, Array<Entry | null>, string[]?]
      try {
        reply = (await this.#client.xautoclaim(
          queue,
          GROUP,
          owner,
          0,
          cursor === '0' ? '0-0' : cursor,
          'COUNT',
          count,
        )) as typeof reply
      } catch (error) {
        if (/NOGROUP/.test((error as Error).message)) {
          return { deliveries: [], cursor: '0', done: true }
        }
        throw error
      }
      const [next, entries, deleted] = reply
      // entries trimmed away while pending (an overflowing queue) are only forgotten
      if (deleted && deleted.length > 0) await this.#client.xack(queue, GROUP, ...deleted)
      const live = entries.filter((e): e is Entry => e !== null)
      return {
        deliveries: await this.#deliveries(webhookId, live),
        cursor: next,
        done: next === '0-0',
      }
    })
  }

  claim(webhookId: string, owner: string, count: number): Promise<Delivery[]> {
    const queue = this.#key(webhookId, 'q')
    return this.#connection.run(async () => {
      let reply: Array<[string, Entry[]]> | null
      try {
        reply = (await this.#client.xreadgroup(
          'GROUP',
          GROUP,
          owner,
          'COUNT',
          count,
          'STREAMS',
          queue,
          '>',
        )) as typeof reply
      } catch (error) {
        // the endpoint was deleted meanwhile: nothing to claim
        if (/NOGROUP/.test((error as Error).message)) return []
        throw error
      }
      const entries = reply?.[0]?.[1] ?? []
      return this.#deliveries(webhookId, entries)
    })
  }

  recordFailure(d: Delivery): Promise<void> {
    const attempts: Attempts = { n: d.attempts, err: d.lastError, at: d.lastAttemptAt }
    return this.#connection.run(async () => {
      await this.#client.presencedWebhookFail(
        this.#key(d.webhookId, 'q'),
        this.#key(d.webhookId, 'try'),
        d.position,
        JSON.stringify(attempts),
      )
    })
  }

  complete(d: Delivery): Promise<void> {
    this.#finished.push(d)
    this.#completing ??= new Promise((resolve) => setImmediate(resolve)).then(() => {
      this.#completing = undefined
      const finished = this.#finished
      this.#finished = []
      return this.#completeAll(finished)
    })
    return this.#completing
  }

  /**
   * Plain commands, not a MULTI: they join the connection's automatic pipeline (one write for
   * everything issued in the tick). Deleting before acknowledging keeps a failure half-way
   * harmless: an entry acknowledged is deleted already, and a pending entry whose stream entry
   * is gone is dropped by the next XAUTOCLAIM.
   */
  #completeAll(deliveries: readonly Delivery[]): Promise<void> {
    const byWebhook = new Map<string, string[]>()
    for (const d of deliveries) {
      const positions = byWebhook.get(d.webhookId)
      if (positions) positions.push(d.position)
      else byWebhook.set(d.webhookId, [d.position])
    }
    return this.#connection.run(async () => {
      await Promise.all(
        [...byWebhook].flatMap(([id, positions]) => {
          const queue = this.#key(id, 'q')
          return [
            this.#client.hdel(this.#key(id, 'try'), ...positions),
            this.#client.xdel(queue, ...positions),
            this.#client.xack(queue, GROUP, ...positions),
          ]
        }),
      )
    })
  }

  park(d: Delivery): Promise<void> {
    const queue = this.#key(d.webhookId, 'q')
    const parked: Delivery = { ...d, parkedAt: d.parkedAt ?? Date.now() }
    return this.#connection.run(async () => {
      await this.#client.presencedWebhookPark(
        queue,
        this.#key(d.webhookId, 'try'),
        this.#key(d.webhookId, 'parked'),
        GROUP,
        d.position,
        d.eventId,
        JSON.stringify(parked),
      )
    })
  }

  listDeliveries(webhookId: string, state: DeliveryState, limit: number): Promise<Delivery[]> {
    return this.#connection.run(async () => {
      if (state === 'queued') {
        const entries = (await this.#client.xrange(
          this.#key(webhookId, 'q'),
          '-',
          '+',
          'COUNT',
          limit,
        )) as Entry[]
        return this.#deliveries(webhookId, entries)
      }
      return (await this.#parked(webhookId)).slice(0, limit)
    })
  }

  replay(webhookId: string, eventIds?: readonly string[]): Promise<number> {
    return this.#connection.run(async () => {
      const parked = await this.#parked(webhookId)
      const wanted = eventIds && new Set(eventIds)
      const ids = parked.filter((d) => !wanted || wanted.has(d.eventId)).map((d) => d.eventId)
      if (ids.length === 0) return 0
      return this.#client.presencedWebhookReplay(
        this.#key(webhookId, 'parked'),
        this.#key(webhookId, 'q'),
        ...ids,
      )
    })
  }

  counts(webhookId: string): Promise<Record<DeliveryState, number>> {
    return this.#connection.run(async () => {
      const [queued, parked] = await Promise.all([
        this.#client.xlen(this.#key(webhookId, 'q')),
        this.#client.hlen(this.#key(webhookId, 'parked')),
      ])
      return { queued, parked }
    })
  }

  close(): Promise<void> {
    return this.#connection.release()
  }

  /** A hash read where it is while its slot is being moved (RedisConnection.read). */
  #hgetall(key: string): Promise<Record<string, string>> {
    return this.#connection.read('hgetall', [key], (c) => c.hgetall(key))
  }

  /** Parked deliveries in their original queue order. */
  async #parked(webhookId: string): Promise<Delivery[]> {
    const all = await this.#hgetall(this.#key(webhookId, 'parked'))
    return Object.values(all)
      .map((raw) => JSON.parse(raw) as Delivery)
      .sort((a, b) => compareEntryIds(a.position, b.position))
  }

  async #deliveries(webhookId: string, entries: readonly Entry[]): Promise<Delivery[]> {
    if (entries.length === 0) return []
    const key = this.#key(webhookId, 'try')
    const ids = entries.map(([id]) => id)
    const tries = await this.#connection.read('hmget', [key, ...ids], (c) => c.hmget(key, ...ids))
    return entries.map(([id, fields], i) => {
      const field: Record<string, string> = {}
      for (let j = 0; j + 1 < fields.length; j += 2) field[fields[j]!] = fields[j + 1]!
      const raw = tries[i]
      const attempts = raw ? (JSON.parse(raw) as Attempts) : undefined
      return {
        webhookId,
        eventId: field.e ?? '',
        userId: (field.u ?? '') as UserId,
        type: (field.t ?? 'update') as WebhookEventType,
        body: field.b ?? '',
        createdAt: Number(field.c ?? 0),
        position: id,
        attempts: attempts?.n ?? 0,
        lastError: attempts?.err,
        lastAttemptAt: attempts?.at,
        parkedAt: undefined,
      }
    })
  }
}

/** Stream ids `ms-seq` compared as the pair of integers they are. */
export function compareEntryIds(a: string, b: string): number {
  const [ams = '0', aseq = '0'] = a.split('-')
  const [bms = '0', bseq = '0'] = b.split('-')
  return Number(ams) - Number(bms) || Number(aseq) - Number(bseq)
}
