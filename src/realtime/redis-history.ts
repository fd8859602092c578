import type { ChangePosition, PresenceChange } from '../core/presence.js'
import type { UserId } from '../core/user-id.js'
import type { RedisKeys } from '../store/redis/keys.js'
import { changeOfMessage, type ChangeMessage } from '../store/redis/presence-codec.js'
import type { RedisConnection } from '../store/redis/redis-connection.js'
import {
  EVERYONE,
  MARKS_KEPT,
  NO_HISTORY,
  marksAfter,
  type MarkRecord,
  isPrivacyMark,
  positionTtlMs,
  privacyMark,
  reaches,
  type History,
  type HistoryBounds,
  type HistoryPosition,
  type HistoryRead,
} from './history.js'

/** An entry appended by `append` rather than by a presence script: the change as JSON. */
interface AppendedMessage {
  n: string
  h: [string, number]
  j: PresenceChange
}

/**
 * Fleet mode's history, in Redis (or a Redis Cluster): per user a position "<epoch> <offset>"
 * and a list of its recent changes, in the user's bucket slot (keys.ts `historyPrefix`). The
 * presence scripts record each change there as they make and publish it (presence.lua `change`),
 * so a change costs no extra round trip; this adapter reads, and records what no script did.
 */
export class RedisHistory implements History {
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys
  readonly #bounds: HistoryBounds
  readonly positionTtlMs: number

  constructor(connection: RedisConnection, keys: RedisKeys, bounds: HistoryBounds) {
    this.#connection = connection.retain()
    this.#keys = keys
    this.#bounds = bounds
    this.positionTtlMs = positionTtlMs(bounds)
  }

  append(change: PresenceChange, at: number): Promise<ChangePosition> {
    return this.#append(change, at)
  }

  /** append, with the deadline of a batch (deadlineFor) when it is one's. */
  #append(change: PresenceChange, at: number, deadlineMs?: number): Promise<ChangePosition> {
    const k = this.#keys
    const id = change.userId
    const connection = this.#connection
    return connection.run(async () => {
      const args = [
        k.historyPosition(id),
        k.historyList(id),
        k.historyMark(id),
        k.historyConcerns(id),
        id,
        String(at),
        JSON.stringify({ ...change, position: undefined, settings: undefined }),
        k.historyPrefix(k.bucketOf(id)),
        String(this.#bounds.entries),
        String(this.#bounds.ageSeconds * 1000),
        isPrivacyMark(change) ? '1' : '0',
        isPrivacyMark(change) ? (change.concern ?? EVERYONE) : '',
        String(MARKS_KEPT),
      ]
      const reply =
        deadlineMs === undefined
          ? await connection.client.presencedHistoryAppend(
              ...(args as [string, string, string, string, ...string[]]),
            )
          : await connection.script<[string, number] | null>(
              'presencedHistoryAppend',
              args,
              deadlineMs,
            )
      const position: ChangePosition = { epoch: String(reply![0]), offset: Number(reply![1]), at }
      change.position = position
      return position
    })
  }

  /**
   * One append per user, sent together: Redis runs them one after the other, so each is given the
   * deadline of them all (RedisConnection.deadlineFor), where an import's 10,000 marks timed out.
   */
  async mark(ids: readonly UserId[], at: number, concern?: readonly string[]): Promise<void> {
    const deadline = this.#connection.deadlineFor(ids.length)
    await Promise.all(ids.map((id, i) => this.#append(privacyMark(id, concern?.[i]), at, deadline)))
  }

  positions(ids: readonly UserId[]): Promise<HistoryPosition[]> {
    if (ids.length === 0) return Promise.resolve([])
    return this.#connection.run(async () => {
      const raws = await this.#connection.mget(ids.map((id) => this.#keys.historyPosition(id)))
      return raws.map(positionOf)
    })
  }

  read(userId: UserId, from: HistoryPosition): Promise<HistoryRead> {
    const k = this.#keys
    return this.#connection.run(async () => {
      const reply = await this.#connection.client.presencedHistoryRead(
        k.historyPosition(userId),
        k.historyList(userId),
        k.historyMark(userId),
        k.historyConcerns(userId),
        // a position of no epoch yet wants the history from its start
        String(from.epoch === '' ? 1 : Math.max(1, from.offset)),
      )
      const position = positionOf(reply[0] ?? null)
      const mark = positionOf(reply[1] || null)
      // a mark of another epoch (or none kept: written before marks were) tells nothing
      const lastMark = mark.epoch === position.epoch && reply[0] ? mark.offset : undefined
      const marks = marksAfter(
        recordsOf(reply[2] ?? '', position.epoch),
        lastMark,
        from.epoch === position.epoch ? from.offset : 0,
      )
      const changes = reply.slice(3).map(entryOf)
      const complete = reaches(from, position, changes[0]?.position?.offset)
      if (!complete) return { position, changes: [], complete, lastMark, marks }
      // a position of another epoch (none yet) wants the whole history
      const start = from.epoch === position.epoch ? from.offset : 0
      const since = changes.filter((c) => c.position!.offset >= start)
      return { position, changes: since, complete, lastMark, marks }
    })
  }

  close(): Promise<void> {
    return this.#connection.release()
  }
}

function positionOf(raw: string | null): HistoryPosition {
  if (!raw) return NO_HISTORY
  const space = raw.indexOf(' ')
  return { epoch: raw.slice(0, space), offset: Number(raw.slice(space + 1)) }
}

/** The mark records of `epoch` in history-read.lua's joined list of "<epoch> <offset> <prev> <concern>". */
function recordsOf(joined: string, epoch: string): MarkRecord[] {
  const records: MarkRecord[] = []
  if (joined === '') return records
  for (const line of joined.split('\n')) {
    const [e, offset, prev, concern] = line.split(' ')
    if (e !== epoch) continue
    records.push({ offset: Number(offset), prev: Number(prev), concern: concern ?? '' })
  }
  return records
}

/** One list entry, "<at> <message>", as the change it records, with its position. */
function entryOf(entry: string): PresenceChange {
  const space = entry.indexOf(' ')
  const at = Number(entry.slice(0, space))
  const message = JSON.parse(entry.slice(space + 1)) as ChangeMessage | AppendedMessage
  if ('c' in message) return changeOfMessage(message)
  const change = message.j
  change.position = { epoch: message.h[0], offset: message.h[1], at }
  return change
}
