import type { UserId } from '../core/user-id.js'
import type { RedisKeys } from '../store/redis/keys.js'
import type { RedisConnection } from '../store/redis/redis-connection.js'
import type { StreamCheckpoint, StreamCheckpoints } from './stream-checkpoints.js'

/** The stored form: short names, as the other JSON values in Redis. */
interface Stored {
  v: string
  s: number
  h: Array<[string, string]>
}

/**
 * Fleet mode's checkpoints: one string per checkpoint, JSON, expiring with the resume window.
 * The key names the viewer beside the token (keys.ts `streamCheckpoint`), so a request of
 * another user looks up a key that does not exist and cannot take (spend) the checkpoint; GETDEL
 * takes it once, whichever node asks first. It uses the stores' connection, which they close.
 */
export class RedisStreamCheckpoints implements StreamCheckpoints {
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys

  constructor(connection: RedisConnection, keys: RedisKeys) {
    this.#connection = connection
    this.#keys = keys
  }

  async save(token: string, checkpoint: StreamCheckpoint, ttlMs: number): Promise<void> {
    const stored: Stored = { v: checkpoint.viewer, s: checkpoint.seq, h: checkpoint.held }
    const key = this.#keys.streamCheckpoint(checkpoint.viewer, token)
    await this.#connection.run(() =>
      this.#connection.client.set(key, JSON.stringify(stored), 'PX', Math.max(1, ttlMs)),
    )
  }

  take(viewer: UserId, token: string): Promise<StreamCheckpoint | undefined> {
    const key = this.#keys.streamCheckpoint(viewer, token)
    return this.#connection.run(async () => {
      const raw = await this.#connection.client.getdel(key)
      if (raw === null) return undefined
      const stored = JSON.parse(raw) as Stored
      return {
        viewer: stored.v as UserId,
        seq: stored.s,
        held: stored.h as Array<[UserId, string]>,
      }
    })
  }
}
