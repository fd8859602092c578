import { randomBytes } from 'node:crypto'
import type { Viewer } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import { ReplayBuffer, tailText, type Frame } from './replay-buffer.js'
import { WatchList } from './watchers.js'

/** Where a stream's frames go: one WebSocket or SSE response. The transport bounds its queue. */
export interface Sink {
  /**
   * Delivers one frame. `seq` and `token` name it for resume (SSE puts them in the event id);
   * they are undefined for frames outside the sequence (reset, error).
   */
  send(frame: string, seq?: number, token?: string): void
  /**
   * Delivers the frame `head + seq + tail`, as `send` would: for a transport that sends the tail,
   * the same string for every stream sent the same view of a change, as it is (WebSocket:
   * encoded once for all of them) rather than a copy joined to each stream's head.
   */
  sendParts?(head: string, seq: number, tail: string): void
  /** Another connection resumed the stream: this one must close. */
  replaced(): void
}

/**
 * One subscriber's ordered, numbered event stream. It outlives its connection for a while so
 * that a reconnecting client can resume it by its token.
 */
export class Stream {
  #id: string | undefined
  /** Resume token: names the stream to a reconnecting client of the same user. */
  readonly token = randomBytes(16).toString('base64url')
  readonly viewer: UserId
  readonly replay: ReplayBuffer
  /** The users this stream watches (the fanout's Watchers keeps the list). */
  readonly watches = new WatchList()
  seq = 0
  /**
   * Ids of recovers asked for and not applied yet (they run asynchronously): counted with the
   * watches against the ids a stream may hold (Fanout.fitsIds). Taken when asked, given back
   * when applied.
   */
  reserved = 0
  /** Whether frames carry the watched user's history position (`pos`), for resume anywhere. */
  positions = false
  sink: Sink | undefined
  /** Pending disposal while detached. */
  expiry: NodeJS.Timeout | undefined
  disposed = false

  constructor(viewer: UserId, replayFrames: number) {
    this.viewer = viewer
    this.replay = new ReplayBuffer(replayFrames)
  }

  /**
   * The viewer as privacy sees it: the stream itself, a user viewer through the two getters
   * below, rather than an object of its own in every stream.
   */
  get principal(): Viewer {
    return this
  }

  get kind(): 'user' {
    return 'user'
  }

  get userId(): UserId {
    return this.viewer
  }

  /** Public id (logs); not a credential. Made when first asked for. */
  get id(): string {
    return (this.#id ??= randomBytes(9).toString('base64url'))
  }

  /** Numbers, records and delivers a frame: `head + seq + tail`. */
  push(frame: Frame): void {
    const seq = ++this.seq
    this.replay.push(seq, frame)
    const sink = this.sink
    if (sink === undefined) return
    const tail = frame.tail
    if (typeof tail === 'string' && sink.sendParts !== undefined)
      sink.sendParts(frame.head, seq, tail)
    else sink.send(frame.head + seq + tailText(tail), seq, this.token)
  }
}
