/**
 * A real-time connection's heartbeat is judged by its token at the write, not when its frame was
 * read: a frame queued behind another write, or read late by a loaded loop before the expiry
 * timer ran, must not write a presence with a token that has expired meanwhile. Over the real
 * service and store of an app: the connection's presence writer (what the WebSocket hands each
 * heartbeat frame to) with a caller whose token expired, and with one still valid.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserCaller } from '../../src/core/caller.js'
import { PresenceError } from '../../src/core/errors.js'
import { PresenceType } from '../../src/core/presence.js'
import { anonymous } from '../../src/core/privacy.js'
import type { UserId } from '../../src/core/user-id.js'
import { ConnectionPresence } from '../../src/protocols/native/connection-presence.js'
import { startApp } from '../helpers/start-app.js'

function callerOf(userId: string, expiresAt: number): UserCaller {
  return {
    kind: 'user',
    userId: userId as UserId,
    via: 'bearer',
    viewer: { kind: 'user', userId: userId as UserId },
    tokenId: undefined,
    expiresAt,
    name: undefined,
  }
}

/** The first refusal a heartbeat frame gets, or 'written' once the user shows online. */
async function outcome(
  service: Awaited<ReturnType<typeof startApp>>['service'],
  caller: UserCaller,
): Promise<unknown> {
  let refusal: unknown
  const presence = new ConnectionPresence(service, caller, '127.0.0.1', (error) => {
    refusal ??= error
  })
  presence.set('PC', { kind: 'online' })
  for (let i = 0; i < 200; i++) {
    if (refusal !== undefined) return refusal
    const [seen] = await service.lookup(anonymous, [caller.userId])
    if (seen!.state !== PresenceType.Offline) return 'written'
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return 'nothing happened'
}

test('a real-time heartbeat written past its token expiry is refused as expired, nothing written', async (t) => {
  const { service } = await startApp(t)
  const refusal = await outcome(service, callerOf('9101', Date.now() - 1))
  assert.ok(refusal instanceof PresenceError, String(refusal))
  assert.equal(refusal.code, 'UNAUTHENTICATED')
  assert.equal(refusal.details.tokenRefused, 'expired')
  const [seen] = await service.lookup(anonymous, ['9101' as UserId])
  assert.equal(seen!.state, PresenceType.Offline, 'nothing written')

  // a token still valid at the write: written
  assert.equal(await outcome(service, callerOf('9102', Date.now() + 60_000)), 'written')
})
