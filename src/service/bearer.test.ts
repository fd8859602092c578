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
import type { Credential } from './authenticator.js'
import { bearerToken, isBlankHeader } from './bearer.js'
import { ManualClock } from './clock.js'
import { Tokens } from './tokens.js'

const SECRET = 'unit-test-secret-of-enough-length-0123456789'

function setup(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-bearer-'))
  const profiles = new SqliteProfileStore(dir)
  const presence = new MemoryPresenceStore({ ledger: profiles })
  const bus = new LocalChangeBus()
  const tokens = new Tokens(SECRET)
  const service = createService(
    { mode: 'embedded', presence, profiles, bus, rateLimiter: new MemoryRateLimiter() },
    testConfig({ dataDir: dir }),
    { clock: new ManualClock(Date.now()), tokens },
  )
  t.after(async () => {
    await presence.close()
    await profiles.close()
    await bus.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { service, tokens }
}

let addresses = 0

/** What authenticate answers (each from an address of its own): the user, else the refusal's code. */
async function outcome(
  auth: ReturnType<typeof setup>['service']['auth'],
  credential: Credential,
): Promise<string> {
  try {
    const caller = await auth.authenticate(
      credential,
      `10.0.${addresses >> 8}.${addresses++ & 255}`,
    )
    return caller.kind === 'user' ? `user ${caller.userId} via ${caller.via}` : caller.kind
  } catch (error) {
    return (error as { code: string }).code
  }
}

test('a Bearer header read by the service answers as its token read off the header does', async (t) => {
  const { service, tokens } = setup(t)
  const token = await tokens.issue('7' as UserId)
  // the reference: the RFC-style pattern the protocols read the header with
  const reference = (header: string) => /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? ''
  const headers = [
    `Bearer ${token}`,
    `bearer ${token}`,
    `Bearer  ${token}`,
    `Bearer ${token} `,
    `Bearer\t${token}`,
    `Bearer ${token}x`,
    `Bearer x${token}`,
    `Bearer ${token.slice(0, -1)}`,
    `xBearer ${token}`,
    `Bearer ${token.slice(0, 20)} ${token.slice(20)}`,
    `Basic ${token}`,
    'Bearer ',
    `${token}`,
  ]
  // the second round finds the token remembered (Tokens.rememberedBearer)
  for (const round of [1, 2]) {
    for (const header of headers) {
      assert.equal(isBlankHeader(header), false)
      assert.equal(bearerToken(header), reference(header), JSON.stringify(header))
      assert.equal(
        await outcome(service.auth, { kind: 'bearer', header }),
        await outcome(service.auth, { kind: 'token', token: reference(header), via: 'bearer' }),
        `round ${round}: ${JSON.stringify(header)}`,
      )
    }
  }
  assert.equal(
    await outcome(service.auth, { kind: 'bearer', header: `Bearer ${token}` }),
    'user 7 via bearer',
  )
})

test('a remembered token is found by its usual header only, and a revoked one is refused', async (t) => {
  const { service, tokens } = setup(t)
  const token = await tokens.issue('8' as UserId)
  assert.equal(tokens.rememberedBearer(`Bearer ${token}`), undefined, 'not verified yet')
  const caller = await service.auth.authenticate({ kind: 'bearer', header: `Bearer ${token}` }, 'a')
  assert.equal(tokens.rememberedBearer(`Bearer ${token}`)?.userId, '8')
  for (const header of [
    `bearer ${token}`,
    `Bearer  ${token}`,
    `Bearer ${token} `,
    `Bxarer ${token}`,
  ]) {
    assert.equal(tokens.rememberedBearer(header), undefined, header)
  }
  assert.equal(caller.kind, 'user')
  await service.auth.logout(caller as Extract<typeof caller, { kind: 'user' }>)
  assert.equal(
    await outcome(service.auth, { kind: 'bearer', header: `Bearer ${token}` }),
    'UNAUTHENTICATED',
  )
})

test('a verified token that is not its usual header’s is not found by the header', async () => {
  const tokens = new Tokens(SECRET)
  const token = await tokens.issue('9' as UserId)
  // a signature's base64url read leniently: a space in it may still verify; either way, the
  // header `Bearer <it>` reads as the empty token, and memory must not answer for it
  const spaced = `${token.slice(0, -5)} ${token.slice(-5)}`
  const verified = await tokens.verify(spaced)
  if (verified !== undefined) assert.equal(tokens.remembered(spaced)?.userId, '9')
  assert.equal(tokens.rememberedBearer(`Bearer ${spaced}`), undefined)
  assert.equal(bearerToken(`Bearer ${spaced}`), '')
})

test('isBlankHeader: as trim() === "" reads it', () => {
  for (const header of ['', ' ', '\t', '\u00a0', '\u2028 ', 'B', ' B', 'bearer', '[', '~']) {
    assert.equal(isBlankHeader(header), header.trim() === '', JSON.stringify(header))
  }
})
