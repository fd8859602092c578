import { randomBytes } from 'node:crypto'
import type { OfflineReason } from '../core/presence.js'
import type { Relation, Viewer } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import { ReplayBuffer, tailText, type Tail } from './replay-buffer.js'

/** Where a stream's frames go: one WebSocket or SSE response. The transport bounds its queue. */
export interface Sink {
  /**
   * Delivers one frame. `seq` and `token` name it for resume (SSE puts them in the event id);
   * they are undefined for frames outside the sequence (reset, error).
   */
  send(frame: string, seq?: number, token?: string): void
  /** Another connection resumed the stream: this one must close. */
  replaced(): void
}

/** What a stream knows of one watched user. */
export interface Watch {
  /** The viewer's relation to the target (one of the shared constants of `relationOf`). */
  relation: Relation
  /** The presence JSON last sent for the target (what the subscriber believes). */
  sent: string
  /** Whether `sent` shows the target online. */
  online: boolean
  /** An offline of the target this stream has not been sent yet: held for the flap grace. */
  held: HeldOffline | undefined
  /**
   * The offset of the target's latest change applied to this watch, in the epoch the fanout
   * holds for the target: a change at or before it is not applied again.
   */
  offset: number
}

/** An offline held back: since when (monotonic ms, `performance.now()`) and why. */
export interface HeldOffline {
  since: number
  reason: OfflineReason
}

/**
 * One subscriber's ordered, numbered event stream. It outlives its connection for a while so
 * that a reconnecting client can resume it by its token.
 */
export class Stream {
  /** Public id (session keys, logs); not a credential. */
  readonly id = randomBytes(9).toString('base64url')
  /** Resume token: names the stream to a reconnecting client of the same user. */
  readonly token = randomBytes(16).toString('base64url')
  readonly viewer: UserId
  /** The viewer as privacy sees it. */
  readonly principal: Viewer
  readonly replay: ReplayBuffer
  seq = 0
  /** Whether frames carry the watched user's history position (`pos`), for resume anywhere. */
  positions = false
  sink: Sink | undefined
  /** Pending disposal while detached. */
  expiry: NodeJS.Timeout | undefined
  disposed = false

  constructor(viewer: UserId, replayFrames: number) {
    this.viewer = viewer
    this.principal = Object.freeze({ kind: 'user', userId: viewer })
    this.replay = new ReplayBuffer(replayFrames)
  }

  /** Numbers, records and delivers a frame made of `head + seq + tail`. */
  push(head: string, tail: Tail): void {
    const seq = ++this.seq
    this.replay.push(seq, head, tail)
    this.sink?.send(head + seq + tailText(tail), seq, this.token)
  }
}
