import type { UserId } from '../core/user-id.js'

/**
 * Where an SSE stream stood when its node ended it on shutdown: what another node needs to
 * continue it for a browser `EventSource`, which can only reconnect with `Last-Event-ID`.
 */
export interface StreamCheckpoint {
  /** The user the stream was for: only that user's request may continue it. */
  viewer: UserId
  /** The seq of the last frame sent: the reconnect's `Last-Event-ID` must name it. */
  seq: number
  /** Per watched user, the `pos` of what the stream last sent of it (Fanout.checkpoint). */
  held: Array<[UserId, string]>
}

/**
 * Checkpoints of streams, by resume token, shared by a fleet's nodes; each is taken once. Only
 * fleet mode has an adapter (RedisStreamCheckpoints): an embedded server has nobody to share
 * them with.
 */
export interface StreamCheckpoints {
  /** Keeps `checkpoint` under `token` for `ttlMs` (the resume window). */
  save(token: string, checkpoint: StreamCheckpoint, ttlMs: number): Promise<void>
  /**
   * Removes and returns the checkpoint `viewer` saved under `token`: undefined when there is
   * none, it expired, was taken already, or is another user's (which stays where it is).
   */
  take(viewer: UserId, token: string): Promise<StreamCheckpoint | undefined>
}
