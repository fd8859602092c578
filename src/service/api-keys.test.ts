import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ApiKeyRecord } from '../core/api-key.js'
import type { CredentialStore } from '../store/credential-store.js'
import { ApiKeys } from './api-keys.js'
import { ManualClock } from './clock.js'

/**
 * A credential store keeping a key twice, by id and by secret hash, as the Redis adapter does
 * (on a cluster, two slots: written by two commands, which may land one without the other).
 * `failAfterId`: the next write stores the copy by id, then fails (the other slot unreachable).
 */
class TwoCopyStore implements CredentialStore {
  readonly byId = new Map<string, string>()
  readonly byHash = new Map<string, string>()
  failAfterId = false

  putApiKey(key: ApiKeyRecord): Promise<void> {
    this.byId.set(key.id, JSON.stringify(key))
    if (this.failAfterId) {
      this.failAfterId = false
      return Promise.reject(new Error('the slot of the copy by hash is unreachable'))
    }
    this.byHash.set(key.hash, JSON.stringify(key))
    return Promise.resolve()
  }

  getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const raw = this.byHash.get(hash)
    return Promise.resolve(raw === undefined ? undefined : (JSON.parse(raw) as ApiKeyRecord))
  }

  getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    const raw = this.byId.get(id)
    return Promise.resolve(raw === undefined ? undefined : (JSON.parse(raw) as ApiKeyRecord))
  }

  listApiKeys(): Promise<ApiKeyRecord[]> {
    return Promise.resolve([...this.byId.values()].map((raw) => JSON.parse(raw) as ApiKeyRecord))
  }

  revokeToken(): Promise<void> {
    return Promise.resolve()
  }

  revocationsSince(): Promise<[]> {
    return Promise.resolve([])
  }

  pruneRevocations(): Promise<void> {
    return Promise.resolve()
  }
}

test('a revocation that landed in part is completed by its retry: the key is refused', async () => {
  const clock = new ManualClock()
  const store = new TwoCopyStore()
  const keys = new ApiKeys(store, clock)
  const { secret, key } = await keys.create({ name: 'matchmaker', scopes: ['presence:read'] })
  assert.ok(await keys.verify(secret))

  store.failAfterId = true
  await assert.rejects(keys.revoke(key.id), /unreachable/)
  clock.advance(1000)
  // the operator retries the revocation that failed (a 503): it is answered as done...
  const revoked = await keys.revoke(key.id)
  assert.equal(revoked?.revokedAt, Date.UTC(2026, 0, 1), 'the first instant is kept')
  // ...and the key must be refused wherever it is checked, not only listed as revoked
  assert.equal(await keys.check(secret), 'inactive')
})

test('a key stands only while its issuers do: one missing from the store, or a loop, vouches for nothing', async () => {
  const clock = new ManualClock()
  const store = new TwoCopyStore()
  const keys = new ApiKeys(store, clock)
  const top = await keys.create({ name: 'top', scopes: ['admin'] })
  const child = await keys.create({
    name: 'child',
    scopes: ['presence:read'],
    issuer: { keyId: top.key.id, expiresAt: undefined, universes: [] },
  })
  assert.equal(child.key.issuedBy, top.key.id)
  assert.ok(await keys.verify(child.secret))

  // the issuer's record lost (a store restored in part): the child is refused, not let through
  store.byId.delete(top.key.id)
  assert.equal(await keys.check(child.secret), 'inactive')
  assert.equal((await keys.get(child.key.id))?.revokedAt, child.key.createdAt)

  // a loop only a hand-edited store could hold
  const looped = {
    ...JSON.parse(store.byHash.get(hashOf(store, child.key.id))!),
    issuedBy: child.key.id,
  }
  store.byId.set(child.key.id, JSON.stringify(looped))
  store.byHash.set(looped.hash, JSON.stringify(looped))
  assert.equal(await keys.check(child.secret), 'inactive')
})

test('a key reaching past a universe-limited issuer stands for nothing: made before the rule, or edited in', async () => {
  const clock = new ManualClock()
  const store = new TwoCopyStore()
  const keys = new ApiKeys(store, clock)
  const studio = await keys.create({
    name: 'studio',
    scopes: ['admin', 'presence:write'],
    universes: ['1', '2'],
  })
  const issuer = { keyId: studio.key.id, expiresAt: undefined, universes: studio.key.universes }
  const within = await keys.create({
    name: 'servers',
    scopes: ['presence:write'],
    universes: ['2'],
    issuer,
  })
  const grand = await keys.create({
    name: 'grand',
    scopes: ['presence:write'],
    universes: ['2'],
    issuer: { keyId: within.key.id, expiresAt: undefined, universes: ['2'] },
  })
  assert.ok(await keys.verify(within.secret))
  assert.ok(await keys.verify(grand.secret))

  // written as create refuses to (a store from before the rule, or edited by hand): every
  // universe, another one, or one beyond its issuer's besides one of them
  for (const universes of [[], ['9'], ['1', '9']]) {
    const stored = { ...JSON.parse(store.byId.get(within.key.id)!), universes }
    store.byId.set(within.key.id, JSON.stringify(stored))
    store.byHash.set(stored.hash, JSON.stringify(stored))
    assert.equal(await keys.check(within.secret), 'inactive', `${universes}`)
    assert.equal((await keys.get(within.key.id))?.revokedAt, within.key.createdAt)
    // what it made stands only while it does
    assert.equal(await keys.check(grand.secret), 'inactive', `grand under ${universes}`)
  }
  const restored = { ...JSON.parse(store.byId.get(within.key.id)!), universes: ['2'] }
  store.byId.set(within.key.id, JSON.stringify(restored))
  store.byHash.set(restored.hash, JSON.stringify(restored))
  assert.ok(await keys.verify(within.secret))
  assert.ok(await keys.verify(grand.secret))
})

function hashOf(store: TwoCopyStore, id: string): string {
  return (JSON.parse(store.byId.get(id)!) as ApiKeyRecord).hash
}
