import type { BusEvent, ChangeBus } from './change-bus.js'

/** In-process bus: the default for a single node. */
export class LocalChangeBus implements ChangeBus {
  readonly #handlers = new Set<(event: BusEvent) => void>()

  publish(event: BusEvent): Promise<void> {
    this.publishNow(event)
    return Promise.resolve()
  }

  publishNow(event: BusEvent): void {
    for (const handler of this.#handlers) handler(event)
  }

  subscribe(handler: (event: BusEvent) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  close(): Promise<void> {
    this.#handlers.clear()
    return Promise.resolve()
  }
}
