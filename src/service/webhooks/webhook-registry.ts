import { isScope, type ApiKeyInfo } from '../../core/api-key.js'
import type { Scope } from '../../core/privacy.js'
import type { WebhookRecord, WebhookStore } from '../../store/webhook-store.js'
import type { ApiKeys } from '../api-keys.js'
import { subscriberOf, type Subscriber } from './webhook-events.js'

/** The scopes that let a key (and so a webhook) read presence, the wider first. */
export const readScopes: readonly Scope[] = ['presence:read:private', 'presence:read']

/**
 * This node's copy of the endpoints and of the keys they are bound to, reloaded from the stores
 * every `refreshMs` (and at once after a change made on this node). Every change is projected for
 * every subscriber, so the hot path must not read the stores for them; a change made on another
 * node (an endpoint created, a key revoked) reaches this one within `refreshMs`; a delivery reads
 * the stores again before each try (`current`), so none goes out with a stale URL or key.
 */
export class WebhookRegistry {
  readonly #store: WebhookStore
  readonly #keys: ApiKeys
  #webhooks: WebhookRecord[] = []
  #keyInfo = new Map<string, ApiKeyInfo>()
  #subscribers: Subscriber[] = []

  constructor(store: WebhookStore, keys: ApiKeys) {
    this.#store = store
    this.#keys = keys
  }

  async refresh(): Promise<void> {
    const [webhooks, keys] = await Promise.all([this.#store.listWebhooks(), this.#keys.list()])
    this.#webhooks = webhooks
    this.#keyInfo = new Map(keys.map((k) => [k.id, k]))
    this.#subscribers = []
    for (const webhook of webhooks) {
      if (!webhook.enabled) continue
      const key = this.#keyInfo.get(webhook.keyId)
      if (!key || !stands(webhook, this.#keyInfo, this.#keys)) continue
      const scopes = key.scopes.filter(isScope)
      if (!readScopes.some((scope) => scopes.includes(scope))) continue
      this.#subscribers.push(subscriberOf(webhook, { kind: 'service', keyId: key.id, scopes }))
    }
  }

  get webhooks(): readonly WebhookRecord[] {
    return this.#webhooks
  }

  /** Enabled endpoints bound to a live key that may read presence. */
  get subscribers(): readonly Subscriber[] {
    return this.#subscribers
  }

  /**
   * The endpoint and whether its key is live, read from the stores now, not from this copy: what
   * a delivery checks before each try, so a change made on another node applies at once.
   */
  async current(id: string): Promise<{ webhook: WebhookRecord; keyActive: boolean } | undefined> {
    const webhook = await this.#store.getWebhook(id)
    if (!webhook) return undefined
    const keys = new Map((await this.#keys.list()).map((k) => [k.id, k]))
    return { webhook, keyActive: stands(webhook, keys, this.#keys) }
  }
}

/**
 * Whether an endpoint may be delivered: its key is live, and so is every API key that made or
 * changed it (`changedBy`; none for the operator's admin key). `keys` as ApiKeys.list answers
 * them, each as it stands with its own issuers.
 */
export function stands(
  webhook: Pick<WebhookRecord, 'keyId' | 'changedBy'>,
  keys: ReadonlyMap<string, ApiKeyInfo>,
  apiKeys: Pick<ApiKeys, 'isActive'>,
): boolean {
  const live = (id: string) => {
    const key = keys.get(id)
    return key !== undefined && apiKeys.isActive(key)
  }
  return live(webhook.keyId) && (webhook.changedBy ?? []).every(live)
}
