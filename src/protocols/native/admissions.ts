import type { FastifyRequest } from 'fastify'
import type { Admission, Fanout } from '../../service/realtime.js'

/** A request's admitted place, given back when its socket closes before the stream opens. */
interface Held {
  admission: Admission
  socket: NodeJS.EventEmitter | undefined
  drop: () => void
}

/**
 * The places real-time requests were admitted to (Fanout.admit) and have not opened a stream in
 * yet. Every such request ends in exactly one of: `take` (its stream opens in the place), or the
 * place given back (Fanout.release) when it ends otherwise: answered without a stream (a 426 to
 * a plain GET, a 400 or 415 to an SSE body, a refused HEAD, any error), refused by `ws` (a bad
 * handshake), or its socket closed first (a client gone before the upgrade). Without this, a
 * refused handshake kept the place until the admission lapsed, and in a fleet until the next
 * renewal of the node's share.
 */
export class PendingAdmissions {
  readonly #fanout: Fanout
  readonly #held = new WeakMap<FastifyRequest, Held>()

  constructor(fanout: Fanout) {
    this.#fanout = fanout
  }

  /** `request` was admitted to `admission`'s place. */
  hold(request: FastifyRequest, admission: Admission): void {
    const socket = request.raw.socket as NodeJS.EventEmitter | undefined
    const held: Held = { admission, socket, drop: () => this.settle(request) }
    this.#held.set(request, held)
    socket?.once('close', held.drop)
  }

  /** The place `request` was admitted to, for its stream to open in (once). */
  take(request: FastifyRequest): Admission | undefined {
    const held = this.#let(request)
    return held?.admission
  }

  /** `request` is over: its place, unless its stream took it, is given back. */
  settle(request: FastifyRequest): void {
    const held = this.#let(request)
    if (held) this.#fanout.release(held.admission)
  }

  #let(request: FastifyRequest): Held | undefined {
    const held = this.#held.get(request)
    if (!held) return undefined
    this.#held.delete(request)
    held.socket?.off('close', held.drop)
    return held
  }
}
