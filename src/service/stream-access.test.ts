import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../core/user-id.js'
import { LocalChangeBus } from '../realtime/local-change-bus.js'
import { MemoryPresenceStore } from '../store/memory/memory-presence-store.js'
import { MemoryRateLimiter } from '../store/memory/memory-rate-limiter.js'
import { SqliteProfileStore } from '../store/sqlite/sqlite-profile-store.js'
import { testConfig } from '../app/config.js'
import { createService } from '../app/create-service.js'
import type { Revocable } from './authenticator.js'
import { ManualClock } from './clock.js'
import { Revocations } from './revocations.js'
import { StreamAccess, type StreamEnd } from './stream-access.js'
import { Tokens } from './tokens.js'

const HOUR = 3_600_000

function profiles(t: TestContext): SqliteProfileStore {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-stream-access-'))
  const store = new SqliteProfileStore(dir)
  t.after(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return store
}

/** What the holder was told, in order. */
function holder() {
  const told: StreamEnd[] = []
  return { told, accessEnded: (reason: StreamEnd) => void told.push(reason) }
}

/**
 * A StreamAccess over real Revocations whose revocations reach it only through its own
 * lookups: `holds` records the registration and never tells (the service's push is tested
 * below, through the service).
 */
function access(t: TestContext, tokenId: string | undefined, recheckMs = 1000) {
  const clock = new ManualClock()
  const revocations = new Revocations(profiles(t), clock, { syncIntervalMs: 60_000 })
  const held = new Set<Revocable>()
  const holds = {
    hold: (_: string | undefined, h: Revocable) => void held.add(h),
    release: (_: string | undefined, h: Revocable) => void held.delete(h),
  }
  const expiresAt = clock.now() + HOUR
  const told = holder()
  const stream = new StreamAccess({ tokenId, expiresAt }, told, {
    clock,
    revocations,
    holds,
    recheckMs,
  })
  return { clock, revocations, held, expiresAt, told: told.told, stream }
}

test('a stream may deliver until its token’s expiry, not at it; the holder is told once', (t) => {
  const { clock, expiresAt, told, stream } = access(t, 'jti-1')
  assert.equal(stream.stillAllowed(expiresAt - 1), true)
  assert.equal(stream.reason, undefined)
  assert.equal(stream.stillAllowed(expiresAt), false)
  assert.equal(stream.reason, 'token expired')
  assert.deepEqual(told, ['token expired'])
  // false stays false, even at an earlier instant, and is told once
  assert.equal(stream.stillAllowed(expiresAt - 1), false)
  clock.set(expiresAt + 1)
  assert.equal(stream.stillAllowed(), false, 'the service clock by default')
  assert.deepEqual(told, ['token expired'])
})

test('the revocations are looked up at most every recheckMs before a frame', (t) => {
  const { clock, revocations, expiresAt, told, stream } = access(t, 'jti-2', 1000)
  const opened = clock.now()
  revocations.remember('jti-2', expiresAt)
  assert.equal(stream.stillAllowed(opened + 999), true, 'not looked up yet')
  assert.equal(stream.stillAllowed(opened + 1000), false)
  assert.equal(stream.reason, 'token revoked')
  assert.deepEqual(told, ['token revoked'])
})

test('a lookup that finds nothing waits recheckMs for the next one', (t) => {
  const { clock, revocations, expiresAt, stream } = access(t, 'jti-3', 1000)
  const opened = clock.now()
  assert.equal(stream.stillAllowed(opened + 1000), true, 'looked up: not revoked')
  revocations.remember('jti-3', expiresAt)
  assert.equal(stream.stillAllowed(opened + 1999), true)
  assert.equal(stream.stillAllowed(opened + 2000), false)
})

test('a token without an id cannot be revoked: only its expiry ends the stream', (t) => {
  const { clock, expiresAt, stream } = access(t, undefined, 0)
  assert.equal(stream.stillAllowed(clock.now() + 5000), true)
  assert.equal(stream.stillAllowed(expiresAt), false)
  assert.equal(stream.reason, 'token expired')
})

test('watchExpiry ends an idle stream at the expiry, and arms no timer while it is far', async (t) => {
  const { clock, expiresAt, told, stream } = access(t, 'jti-4')
  stream.watchExpiry(1000)
  clock.set(expiresAt)
  // far when it was looked at: no timer, so nothing is told until the next look
  await new Promise((resolve) => setTimeout(resolve, 30))
  assert.deepEqual(told, [])
  stream.watchExpiry(1000)
  assert.deepEqual(told, ['token expired'], 'past the expiry: told at once')

  const near = access(t, 'jti-5')
  near.clock.set(near.expiresAt - 20)
  near.stream.watchExpiry(1000)
  assert.deepEqual(near.told, [])
  near.clock.set(near.expiresAt)
  await new Promise((resolve) => setTimeout(resolve, 60))
  assert.deepEqual(near.told, ['token expired'], 'the timer armed near the expiry ended it')
})

test('a released stream is told nothing and leaves its hold', (t) => {
  const { held, revocations, expiresAt, told, stream } = access(t, 'jti-6', 0)
  assert.equal(held.size, 1)
  stream.release()
  assert.equal(held.size, 0)
  revocations.remember('jti-6', expiresAt)
  stream.revoked()
  stream.watchExpiry(2 * HOUR)
  assert.equal(stream.stillAllowed(expiresAt), false)
  assert.deepEqual(told, [])
})

function service(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-stream-access-service-'))
  const profileStore = new SqliteProfileStore(dir)
  const presence = new MemoryPresenceStore({ ledger: profileStore })
  const bus = new LocalChangeBus()
  const tokens = new Tokens('unit-test-secret-of-enough-length-0123456789')
  const presenceService = createService(
    {
      mode: 'embedded',
      presence,
      profiles: profileStore,
      bus,
      rateLimiter: new MemoryRateLimiter(),
    },
    testConfig({ dataDir: dir }),
    { clock: new ManualClock(Date.now()), tokens },
  )
  t.after(async () => {
    await presence.close()
    await profileStore.close()
    await bus.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const signIn = async (userId: string) => {
    const token = await tokens.issue(userId as UserId)
    const { auth } = presenceService
    return auth.requireUser(await auth.authenticate({ kind: 'token', token, via: 'bearer' }, '::1'))
  }
  return { service: presenceService, signIn }
}

test('service.streamAccess: a logout tells every stream of the token at once, no other', async (t) => {
  const { service: svc, signIn } = service(t)
  const caller = await signIn('11')
  const other = await signIn('11')
  const [a, b, c] = [holder(), holder(), holder()]
  svc.streamAccess(caller, a)
  svc.streamAccess(caller, b)
  const untouched = svc.streamAccess(other, c)
  await svc.auth.logout(caller)
  assert.deepEqual([a.told, b.told, c.told], [['token revoked'], ['token revoked'], []])
  assert.equal(untouched.stillAllowed(), true)
})

test('service.streamAccess: a token revoked already ends the stream before it is returned', async (t) => {
  const { service: svc, signIn } = service(t)
  const caller = await signIn('12')
  await svc.auth.logout(caller)
  const late = holder()
  const stream = svc.streamAccess(caller, late)
  assert.deepEqual(late.told, ['token revoked'])
  assert.equal(stream.stillAllowed(), false)
  assert.equal(stream.reason, 'token revoked')
})

test('service.streamAccess: a released stream is not told of a later logout', async (t) => {
  const { service: svc, signIn } = service(t)
  const caller = await signIn('13')
  const gone = holder()
  svc.streamAccess(caller, gone).release()
  await svc.auth.logout(caller)
  assert.deepEqual(gone.told, [])
})
