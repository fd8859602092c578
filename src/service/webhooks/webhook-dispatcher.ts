import { randomUUID } from 'node:crypto'
import type { WebhookStore } from '../../store/webhook-store.js'
import { EndpointWorker, type EndpointWorkerDeps } from './endpoint-worker.js'
import type { WebhookRegistry } from './webhook-registry.js'

export interface DispatcherDeps {
  store: WebhookStore
  registry: WebhookRegistry
  /**
   * A lease lives this long unless renewed (renewed every quarter of it): how long the endpoints
   * of a node that died wait before another node takes them over.
   */
  leaseMs: number
  /** Everything a worker needs but its endpoint and owner. */
  worker: Omit<EndpointWorkerDeps, 'owner' | 'current'>
  onError(error: unknown): void
}

/**
 * Decides which endpoints this node delivers. Every node runs one; through the store they agree
 * that each enabled endpoint is delivered by exactly one node at a time: a node delivers an
 * endpoint while it holds the endpoint's lease, renews its leases every quarter of their life,
 * and takes free ones up to its fair share (endpoints / live nodes, rounded up), giving back any
 * beyond it. A node that dies stops renewing; once its leases lapse, the others take its
 * endpoints over, with what it had claimed and not finished.
 *
 * A worker trusts its lease for half of its life from when the renewal was sent, so a node cut
 * off from the store stops delivering well before another node can take over.
 */
export class WebhookDispatcher {
  readonly node = randomUUID()
  readonly #deps: DispatcherDeps
  readonly #workers = new Map<string, EndpointWorker>()
  readonly #retiring = new Map<string, Promise<void>>()
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | undefined
  #again = false
  #stopped = false

  constructor(deps: DispatcherDeps) {
    this.#deps = deps
  }

  start(): void {
    if (this.#timer || this.#stopped) return
    this.#timer = setInterval(() => void this.tick(), Math.max(50, this.#deps.leaseMs / 4))
    // delivery alone must not keep the process alive
    this.#timer.unref()
    void this.tick()
  }

  /** Revisits the endpoints now (after a local change), or right after the visit under way. */
  tick(): Promise<void> {
    if (this.#stopped || !this.#timer) return Promise.resolve()
    if (this.#ticking) {
      this.#again = true
      return this.#ticking
    }
    this.#ticking = this.#visit()
      .catch((error: unknown) => this.#deps.onError(error))
      .finally(() => {
        this.#ticking = undefined
        if (this.#again) {
          this.#again = false
          void this.tick()
        }
      })
    return this.#ticking
  }

  /** Wakes the local workers of endpoints that just got events. */
  wake(webhookIds: Iterable<string>): void {
    for (const id of webhookIds) this.#workers.get(id)?.wake()
  }

  /** The endpoints this node delivers now. */
  get owned(): string[] {
    return [...this.#workers.keys()]
  }

  /** Stops every worker (tries in flight finish) and gives their leases back. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#ticking
    for (const id of [...this.#workers.keys()]) this.#retire(id)
    await Promise.all([...this.#retiring.values()])
  }

  async #visit(): Promise<void> {
    const { store, registry, leaseMs } = this.#deps
    const wanted = registry.webhooks.filter((w) => w.enabled).map((w) => w.id)
    const wantedSet = new Set(wanted)
    for (const id of [...this.#workers.keys()]) if (!wantedSet.has(id)) this.#retire(id)

    const sent = performance.now()
    const nodes = await store.announceNode(this.node, leaseMs)
    for (const [id, worker] of [...this.#workers]) {
      if (await store.acquireLease(id, this.node, leaseMs)) worker.extendLease(sent + leaseMs / 2)
      // lost (this node was cut off longer than the lease): another node may deliver it now
      else this.#retire(id, false)
    }

    const fair = Math.ceil(wanted.length / Math.max(1, nodes))
    for (const id of [...this.#workers.keys()].slice(fair)) this.#retire(id)
    if (this.#workers.size >= fair || this.#stopped) return
    // start at a place of this node's own so that nodes do not all race for the same endpoint
    const start = wanted.length > 0 ? hashOf(this.node) % wanted.length : 0
    for (let i = 0; i < wanted.length && this.#workers.size < fair; i++) {
      const id = wanted[(start + i) % wanted.length]!
      if (this.#workers.has(id) || this.#retiring.has(id)) continue
      const taken = performance.now()
      if (!(await store.acquireLease(id, this.node, leaseMs))) continue
      if (this.#stopped) {
        await store.releaseLease(id, this.node)
        return
      }
      this.#startWorker(id, taken + leaseMs / 2)
    }
  }

  #startWorker(id: string, leaseUntil: number): void {
    const { registry, worker } = this.#deps
    const endpoint = new EndpointWorker(id, {
      ...worker,
      owner: this.node,
      current: () => registry.current(id),
    })
    endpoint.extendLease(leaseUntil)
    this.#workers.set(id, endpoint)
    endpoint.start()
  }

  /** Stops delivering `id`; gives its lease back once nothing of it is in flight. */
  #retire(id: string, release = true): void {
    const worker = this.#workers.get(id)
    if (!worker) return
    this.#workers.delete(id)
    const retired = worker
      .stop()
      .then(() => (release ? this.#deps.store.releaseLease(id, this.node) : undefined))
      .catch((error: unknown) => this.#deps.onError(error))
      .finally(() => this.#retiring.delete(id))
    this.#retiring.set(id, retired)
  }
}

function hashOf(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}
