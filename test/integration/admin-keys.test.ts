import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { hasScope, mayWriteUniverse } from '../../src/core/api-key.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

function createKey(app: FastifyInstance, body: unknown, key = ADMIN_KEY) {
  return app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  })
}

function getSettings(app: FastifyInstance, key: string) {
  return app.inject({
    method: 'GET',
    url: '/admin/v1/users/1/settings',
    headers: { 'x-api-key': key },
  })
}

test('a key is shown once, stored hashed, listed without secret, scopes as given', async (t) => {
  const clock = new ManualClock()
  const { app, stores } = await startApp(t, { clock })
  const res = await createKey(app, {
    name: 'matchmaker',
    scopes: ['presence:read', 'presence:write'],
    universes: ['9007199254740993', 12],
  })
  assert.equal(res.statusCode, 201, res.body)
  const created = res.json()
  assert.match(created.secret, /^pk_[A-Za-z0-9_-]{43}$/)
  assert.match(created.id, /^[0-9a-f]{16}$/)
  assert.equal(created.name, 'matchmaker')
  assert.deepEqual(created.scopes, ['presence:read', 'presence:write'])
  assert.deepEqual(created.universes, ['9007199254740993', '12'])
  assert.equal(created.createdAt, new Date(clock.now()).toISOString())
  assert.equal(created.expiresAt, null)
  assert.equal(created.revokedAt, null)
  assert.equal(created.active, true)

  const [stored] = await stores.profiles.listApiKeys()
  assert.notEqual(stored!.hash, created.secret)
  assert.ok(!JSON.stringify(stored).includes(created.secret), 'the secret is not stored')

  const list = await app.inject({
    method: 'GET',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY },
  })
  assert.equal(list.statusCode, 200)
  assert.ok(!list.body.includes(created.secret))
  assert.ok(!list.body.includes(stored!.hash))
  const { secret, ...withoutSecret } = created
  void secret
  assert.deepEqual(list.json(), { keys: [withoutSecret] })
})

test('scopes: an admin-scoped key may use the admin API, others get 403 naming the scope', async (t) => {
  const { app } = await startApp(t)
  const admin = (await createKey(app, { name: 'ops', scopes: ['admin'] })).json().secret
  const reader = (await createKey(app, { name: 'reader', scopes: ['presence:read'] })).json().secret
  assert.equal((await getSettings(app, admin)).statusCode, 200)
  // an admin-scoped key can itself create keys
  assert.equal(
    (await createKey(app, { name: 'child', scopes: ['presence:read'] }, admin)).statusCode,
    201,
  )

  const refused = await getSettings(app, reader)
  assert.equal(refused.statusCode, 403)
  assert.equal(refused.json().error.code, 'SCOPE_MISSING')
  assert.match(refused.json().error.message, /required scope: admin/)
  const unknown = await getSettings(app, 'pk_' + 'A'.repeat(43))
  assert.equal(unknown.statusCode, 401)
})

test('the admin API takes one credential: a token beside a key is refused, a token alone is no key', async (t) => {
  const { app, tokens } = await startApp(t)
  const token = await tokens.issue('1001' as UserId)
  const admin = (await createKey(app, { name: 'ops', scopes: ['admin'] })).json().secret
  for (const [name, key] of [
    ['the admin key', ADMIN_KEY],
    ['an admin-scoped key', admin],
  ]) {
    const both = await app.inject({
      method: 'GET',
      url: '/admin/v1/users/1/settings',
      headers: { 'x-api-key': key, authorization: `Bearer ${token}` },
    })
    assert.equal(both.statusCode, 400, name)
    assert.equal(both.json().error.code, 'INVALID_REQUEST', name)
    assert.match(both.json().error.message, /one credential/, name)
    assert.equal((await getSettings(app, key)).statusCode, 200, name)
  }
  // nothing is written with a request refused for its credentials
  const put = await app.inject({
    method: 'PUT',
    url: '/admin/v1/users/1/settings',
    headers: { 'x-api-key': ADMIN_KEY, authorization: `Bearer ${token}` },
    payload: { visibility: 'nobody' },
  })
  assert.equal(put.statusCode, 400)
  assert.notEqual((await getSettings(app, ADMIN_KEY)).json().visibility, 'nobody')
  const alone = await app.inject({
    method: 'GET',
    url: '/admin/v1/users/1/settings',
    headers: { authorization: `Bearer ${token}` },
  })
  assert.equal(alone.statusCode, 401)
  assert.equal(alone.json().error.code, 'API_KEY_MISSING')
})

test('revocation and expiry take effect at once', async (t) => {
  const clock = new ManualClock()
  const { app } = await startApp(t, { clock })
  const a = (await createKey(app, { name: 'a', scopes: ['admin'] })).json()
  const b = (await createKey(app, { name: 'b', scopes: ['admin'], expiresIn: 60 })).json()
  const iso = new Date(clock.now() + 3_600_000).toISOString()
  const c = (await createKey(app, { name: 'c', scopes: ['admin'], expiresAt: iso })).json()
  assert.equal(b.expiresAt, new Date(clock.now() + 60_000).toISOString())
  assert.equal(c.expiresAt, iso)

  assert.equal((await getSettings(app, a.secret)).statusCode, 200)
  const revoked = await app.inject({
    method: 'DELETE',
    url: `/admin/v1/keys/${a.id}`,
    headers: { 'x-api-key': ADMIN_KEY },
  })
  assert.equal(revoked.statusCode, 200)
  assert.equal(revoked.json().active, false)
  assert.equal(revoked.json().revokedAt, new Date(clock.now()).toISOString())
  assert.equal((await getSettings(app, a.secret)).statusCode, 401)

  assert.equal((await getSettings(app, b.secret)).statusCode, 200)
  clock.advance(59_999)
  assert.equal((await getSettings(app, b.secret)).statusCode, 200)
  clock.advance(1)
  assert.equal((await getSettings(app, b.secret)).statusCode, 401)
  assert.equal((await getSettings(app, c.secret)).statusCode, 200)
  clock.advance(3_600_000)
  assert.equal((await getSettings(app, c.secret)).statusCode, 401)

  const list = (
    await app.inject({ method: 'GET', url: '/admin/v1/keys', headers: { 'x-api-key': ADMIN_KEY } })
  ).json()
  assert.deepEqual(
    list.keys.map((k: { name: string; active: boolean }) => [k.name, k.active]).sort(),
    [
      ['a', false],
      ['b', false],
      ['c', false],
    ],
  )
  const missing = await app.inject({
    method: 'DELETE',
    url: '/admin/v1/keys/0123456789abcdef',
    headers: { 'x-api-key': ADMIN_KEY },
  })
  assert.equal(missing.statusCode, 404)
  const junk = await app.inject({
    method: 'DELETE',
    url: '/admin/v1/keys/..%2F..',
    headers: { 'x-api-key': ADMIN_KEY },
  })
  assert.equal(junk.statusCode, 404)
})

test('a key made with an expiring key expires no later than it: its expiry cannot be outlived', async (t) => {
  const clock = new ManualClock()
  const { app } = await startApp(t, { clock })
  const temporary = (
    await createKey(app, { name: 'on-call', scopes: ['admin'], expiresIn: 60 })
  ).json().secret
  // a key for good, or for longer, would let the on-call key act after its own expiry
  const forever = await createKey(app, { name: 'forever', scopes: ['admin'] }, temporary)
  assert.equal(forever.statusCode, 403, forever.body)
  assert.equal(forever.json().error.code, 'FORBIDDEN')
  assert.match(forever.json().error.message, /expires at .*no later/)
  const longer = await createKey(
    app,
    { name: 'longer', scopes: ['presence:read'], expiresIn: 61 },
    temporary,
  )
  assert.equal(longer.statusCode, 403, longer.body)
  const laterIso = new Date(clock.now() + 60_001).toISOString()
  const later = await createKey(
    app,
    { name: 'later', scopes: ['presence:read'], expiresAt: laterIso },
    temporary,
  )
  assert.equal(later.statusCode, 403, later.body)
  // within its own lifetime it creates keys as before
  const within = await createKey(
    app,
    { name: 'within', scopes: ['presence:read'], expiresIn: 60 },
    temporary,
  )
  assert.equal(within.statusCode, 201, within.body)
  assert.equal(within.json().expiresAt, new Date(clock.now() + 60_000).toISOString())
  // the operator's admin key and keys that never expire are bound by nothing
  const lasting = (await createKey(app, { name: 'ops', scopes: ['admin'] })).json().secret
  assert.equal((await createKey(app, { name: 'k', scopes: ['admin'] }, lasting)).statusCode, 201)
  clock.advance(60_000)
  assert.equal((await getSettings(app, temporary)).statusCode, 401)
  assert.equal((await getSettings(app, within.json().secret)).statusCode, 401)
})

test('a webhook made or changed with an expiring key is bound to a key that expires no later', async (t) => {
  const clock = new ManualClock()
  const { app } = await startApp(t, { clock })
  const webhookCall = (method: string, url: string, key: string, body: unknown) =>
    app.inject({
      method,
      url,
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    })
  const temporary = (
    await createKey(app, { name: 'on-call', scopes: ['admin'], expiresIn: 60 })
  ).json().secret
  const lasting = (
    await createKey(app, { name: 'private', scopes: ['presence:read:private'] })
  ).json().id
  const brief = (
    await createKey(app, { name: 'brief', scopes: ['presence:read'], expiresIn: 30 })
  ).json().id
  const hook = { url: 'https://receiver.example/hooks', events: ['online'] }
  // bound to a key for good, the endpoint would keep receiving after the on-call key expired
  const made = await webhookCall('POST', '/admin/v1/webhooks', temporary, {
    ...hook,
    keyId: lasting,
  })
  assert.equal(made.statusCode, 403, made.body)
  assert.equal(made.json().error.code, 'FORBIDDEN')
  const operators = await webhookCall('POST', '/admin/v1/webhooks', ADMIN_KEY, {
    ...hook,
    keyId: lasting,
  })
  assert.equal(operators.statusCode, 201, operators.body)
  // nor may it point the operators' endpoint elsewhere
  const moved = await webhookCall('PATCH', `/admin/v1/webhooks/${operators.json().id}`, temporary, {
    url: 'https://elsewhere.example/hooks',
  })
  assert.equal(moved.statusCode, 403, moved.body)
  const within = await webhookCall('POST', '/admin/v1/webhooks', temporary, {
    ...hook,
    keyId: brief,
  })
  assert.equal(within.statusCode, 201, within.body)
})

test('revoking an admin key revokes what it made, down the chain; the listing names each issuer', async (t) => {
  const clock = new ManualClock()
  const { app } = await startApp(t, { clock })
  const revoke = (id: string) =>
    app.inject({
      method: 'DELETE',
      url: `/admin/v1/keys/${id}`,
      headers: { 'x-api-key': ADMIN_KEY },
    })
  const listed = async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/admin/v1/keys',
      headers: { 'x-api-key': ADMIN_KEY },
    })
    const keys = res.json().keys as {
      id: string
      issuedBy: string | null
      revokedAt: string | null
      active: boolean
    }[]
    return Object.fromEntries(keys.map((k) => [k.id, [k.issuedBy, k.revokedAt, k.active]]))
  }
  const top = (await createKey(app, { name: 'top', scopes: ['admin'] })).json()
  const middle = (await createKey(app, { name: 'middle', scopes: ['admin'] }, top.secret)).json()
  const leaf = (await createKey(app, { name: 'leaf', scopes: ['admin'] }, middle.secret)).json()
  const alone = (await createKey(app, { name: 'alone', scopes: ['admin'] })).json()
  assert.equal(middle.issuedBy, top.id, 'the create answer names the issuer')
  assert.deepEqual(await listed(), {
    [top.id]: [null, null, true],
    [middle.id]: [top.id, null, true],
    [leaf.id]: [middle.id, null, true],
    [alone.id]: [null, null, true],
  })

  const first = new Date(clock.now()).toISOString()
  const revoked = await revoke(middle.id)
  assert.equal(revoked.statusCode, 200)
  clock.advance(1000)
  for (const [key, status] of [
    [top, 200],
    [middle, 401],
    [leaf, 401],
    [alone, 200],
  ] as const) {
    const res = await getSettings(app, key.secret)
    assert.equal(res.statusCode, status, `${key.name}: ${res.body}`)
    if (status === 401) assert.equal(res.json().error.code, 'API_KEY_INVALID')
  }
  // nor may a key refused make another
  assert.equal(
    (await createKey(app, { name: 'late', scopes: ['admin'] }, leaf.secret)).statusCode,
    401,
  )
  assert.deepEqual(await listed(), {
    [top.id]: [null, null, true],
    [middle.id]: [top.id, first, false],
    [leaf.id]: [middle.id, first, false],
    [alone.id]: [null, null, true],
  })
  // revoking the top later keeps the instant each stopped at
  const second = new Date(clock.now()).toISOString()
  assert.equal((await revoke(top.id)).statusCode, 200)
  const leafRevoked = await revoke(leaf.id)
  assert.equal(leafRevoked.json().revokedAt, first)
  assert.deepEqual(await listed(), {
    [top.id]: [null, second, false],
    [middle.id]: [top.id, first, false],
    [leaf.id]: [middle.id, first, false],
    [alone.id]: [null, null, true],
  })
  assert.equal((await getSettings(app, alone.secret)).statusCode, 200)
})

test('bad key requests are refused with 400 and create nothing', async (t) => {
  const clock = new ManualClock()
  const { app, stores } = await startApp(t, { clock })
  const bad: unknown[] = [
    { scopes: ['admin'] },
    { name: 'x' },
    { name: 'x', scopes: [] },
    { name: 'x', scopes: ['root'] },
    { name: '', scopes: ['admin'] },
    { name: 'x', scopes: ['admin'], expiresAt: 'tomorrow' },
    { name: 'x', scopes: ['admin'], expiresAt: new Date(clock.now() - 1).toISOString() },
    { name: 'x', scopes: ['admin'], expiresIn: 0 },
    { name: 'x', scopes: ['admin'], expiresIn: 10, expiresAt: '2030-01-01T00:00:00Z' },
    // past year 9999 (the last instant every date check here accepts); 9e12 s is a safe
    // integer of ms beyond what a Date holds: it was stored, and every listing then a 500
    { name: 'x', scopes: ['admin'], expiresIn: 9_000_000_000_000 },
    { name: 'x', scopes: ['admin'], expiresAt: '+010000-01-01T00:00:00.000Z' },
    // days and hours no calendar has: Date.parse rolled them over to another instant
    { name: 'x', scopes: ['admin'], expiresAt: '2030-02-30T00:00:00Z' },
    { name: 'x', scopes: ['admin'], expiresAt: '2031-02-29T00:00:00Z' },
    { name: 'x', scopes: ['admin'], expiresAt: '2030-04-31T00:00:00Z' },
    { name: 'x', scopes: ['admin'], expiresAt: '2030-01-01T24:00:00Z' },
    { name: 'x', scopes: ['admin'], universes: ['abc'] },
    { name: 'x', scopes: ['admin'], universes: [0] },
    { name: 'x', scopes: ['admin'], secret: 'pk_mine' },
  ]
  for (const body of bad) {
    const res = await createKey(app, body)
    assert.equal(res.statusCode, 400, `${JSON.stringify(body)} → ${res.body}`)
    const universes = (body as { universes?: unknown }).universes
    assert.equal(res.json().error.code, universes ? 'UNIVERSE_ID_INVALID' : 'INVALID_REQUEST')
  }
  assert.deepEqual(await stores.profiles.listApiKeys(), [])
})

test('universes limit presence writes only: a key that cannot write is refused a list it would not keep', async (t) => {
  const { app, stores } = await startApp(t)
  // each would read (or administer) every universe: the list the operator gave would limit nothing
  for (const scopes of [['presence:read'], ['presence:read:private'], ['admin']]) {
    const res = await createKey(app, { name: 'x', scopes, universes: ['13058'] })
    assert.equal(res.statusCode, 400, `${scopes.join(' ')} → ${res.statusCode}`)
    assert.equal(res.json().error.code, 'INVALID_REQUEST')
    assert.match(res.json().error.message, /universes limit presence:write only/)
  }
  assert.deepEqual(await stores.profiles.listApiKeys(), [])
  const writer = await createKey(app, {
    name: 'x',
    scopes: ['presence:read', 'presence:write'],
    universes: ['13058'],
  })
  assert.equal(writer.statusCode, 201, writer.body)
  const empty = await createKey(app, { name: 'y', scopes: ['presence:read'], universes: [] })
  assert.equal(empty.statusCode, 201, empty.body)
})

test('expiresAt takes any instant a calendar has: a leap day, the last second, an offset', async (t) => {
  const { app } = await startApp(t, { clock: new ManualClock() })
  const cases: [string, string][] = [
    ['2032-02-29T00:00:00Z', '2032-02-29T00:00:00.000Z'],
    ['2030-12-31T23:59:59.5Z', '2030-12-31T23:59:59.500Z'],
    ['2030-03-01T00:30:00+01:00', '2030-02-28T23:30:00.000Z'],
  ]
  for (const [expiresAt, stored] of cases) {
    const res = await createKey(app, { name: 'x', scopes: ['admin'], expiresAt })
    assert.equal(res.statusCode, 201, `${expiresAt}: ${res.body}`)
    assert.equal(res.json().expiresAt, stored)
  }
})

test('ApiKeys helpers: verify, scopes, universe allow-list, viewer', async (t) => {
  const clock = new ManualClock()
  const { service } = await startApp(t, { clock })
  const keys = service.keys
  const { secret, key } = await keys.create({
    name: 'game servers',
    scopes: ['presence:write', 'presence:read:private'],
    universes: ['10', '10', '11'],
  })
  assert.deepEqual(key.universes, ['10', '11'])
  const record = await keys.verify(secret)
  assert.ok(record)
  assert.equal(await keys.verify(secret + 'x'), undefined)
  assert.equal(await keys.verify('not-a-key'), undefined)
  assert.ok(hasScope(record, 'presence:write'))
  assert.ok(!hasScope(record, 'admin'))
  assert.ok(mayWriteUniverse(record, '11'))
  assert.ok(!mayWriteUniverse(record, '12'))
  assert.ok(!mayWriteUniverse(record, undefined))
  assert.ok(mayWriteUniverse({ universes: [] }, '12'))
  const caller = await service.auth.authenticate({ kind: 'apiKey', secret }, '127.0.0.1')
  assert.deepEqual(caller.viewer, {
    kind: 'service',
    keyId: key.id,
    scopes: ['presence:write', 'presence:read:private'],
  })
  assert.ok(await keys.revoke(key.id))
  assert.equal(await keys.verify(secret), undefined)
  assert.equal(await keys.revoke('nope'), undefined)
})

/**
 * A universe-limited admin key's reach, one rule (core universesWithin): what it makes or
 * touches stays within its universes. Embedded (SQLite) and fleet (Redis) keep keys, places and
 * webhooks in different stores; the rule must hold over both.
 */
for (const mode of ['embedded', 'fleet'] as const) {
  const start = async (t: TestContext) => {
    if (mode === 'embedded') return startApp(t)
    const prefix = uniquePrefix('keys2')
    t.after(async () => void (await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)))
    return startApp(t, { config: { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix } })
  }
  const call = (app: FastifyInstance, method: string, url: string, key: string, body?: unknown) =>
    app.inject({
      method,
      url,
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      ...(body !== undefined && { payload: JSON.stringify(body) }),
    })
  const limitedAdmin = async (app: FastifyInstance) => {
    const res = await createKey(app, {
      name: 'studio ops',
      scopes: ['admin', 'presence:write'],
      universes: ['1', '2'],
    })
    assert.equal(res.statusCode, 201, res.body)
    return res.json() as { secret: string; id: string }
  }

  test(`${mode}: a universe-limited admin key makes only keys within its universes, down the chain`, async (t) => {
    const { app } = await start(t)
    const limited = (await limitedAdmin(app)).secret
    // each would reach beyond universes 1 and 2: every universe, or another one
    const beyond: unknown[] = [
      { name: 'w', scopes: ['presence:write'] },
      { name: 'w', scopes: ['presence:write'], universes: [] },
      { name: 'w', scopes: ['presence:write'], universes: ['1', '3'] },
      { name: 'a', scopes: ['admin'] },
      { name: 'a', scopes: ['admin', 'presence:write'] },
      { name: 'r', scopes: ['presence:read'] },
    ]
    for (const body of beyond) {
      const res = await createKey(app, body, limited)
      // (the answer's body would hold a secret on a 201: only its status and error are shown)
      assert.equal(res.statusCode, 403, `${JSON.stringify(body)} → ${res.statusCode}`)
      assert.equal(res.json().error.code, 'FORBIDDEN')
      assert.match(res.json().error.message, /limited to universes 1, 2/)
    }
    const child = await createKey(
      app,
      { name: 'c', scopes: ['admin', 'presence:write'], universes: ['2'] },
      limited,
    )
    assert.equal(child.statusCode, 201, child.json().error?.message)
    assert.deepEqual(child.json().universes, ['2'])
    // the child's own list binds what it makes in turn
    const grand = await createKey(
      app,
      { name: 'g', scopes: ['presence:write'], universes: ['1'] },
      child.json().secret,
    )
    assert.equal(grand.statusCode, 403)
    assert.match(grand.json().error.message, /limited to universes 2\b/)
    const within = await createKey(
      app,
      { name: 'g', scopes: ['presence:write'], universes: ['2'] },
      child.json().secret,
    )
    assert.equal(within.statusCode, 201, within.json().error?.message)
    // an admin key without a list is bound by nothing, as before
    const free = (await createKey(app, { name: 'ops', scopes: ['admin'] })).json().secret
    assert.equal((await createKey(app, { name: 'k', scopes: ['admin'] }, free)).statusCode, 201)
  })

  test(`${mode}: a universe-limited admin key revokes only keys within its universes`, async (t) => {
    const { app } = await start(t)
    const limited = await limitedAdmin(app)
    const revoke = (id: string, key: string) => call(app, 'DELETE', `/admin/v1/keys/${id}`, key)
    const ops = (await createKey(app, { name: 'ops', scopes: ['admin'] })).json().id
    const other = (
      await createKey(app, { name: 'other', scopes: ['presence:write'], universes: ['9'] })
    ).json().id
    const wide = (
      await createKey(app, { name: 'wide', scopes: ['presence:write'], universes: ['1', '9'] })
    ).json().id
    // the operators' key, another universe's game servers: not its to stop
    for (const id of [ops, other, wide]) {
      const res = await revoke(id, limited.secret)
      assert.equal(res.statusCode, 403, res.body)
      assert.equal(res.json().error.code, 'FORBIDDEN')
      assert.match(res.json().error.message, /limited to universes 1, 2/)
    }
    const listed = await call(app, 'GET', '/admin/v1/keys', ADMIN_KEY)
    for (const key of listed.json().keys) assert.equal(key.active, true, key.name)
    const mine = (
      await createKey(app, { name: 'mine', scopes: ['presence:write'], universes: ['2'] })
    ).json().id
    const made = (
      await createKey(
        app,
        { name: 'made', scopes: ['presence:write'], universes: ['1'] },
        limited.secret,
      )
    ).json().id
    assert.equal((await revoke(mine, limited.secret)).statusCode, 200)
    assert.equal((await revoke(made, limited.secret)).statusCode, 200)
    // itself too, and an unknown id is a 404 as before
    assert.equal((await revoke('0123456789abcdef', limited.secret)).statusCode, 404)
    assert.equal((await revoke(limited.id, limited.secret)).statusCode, 200)
  })

  test(`${mode}: a universe-limited admin key writes only catalogue places within its universes`, async (t) => {
    const { app } = await start(t)
    const limited = (await limitedAdmin(app)).secret
    const put = (placeId: string, universeId: string, key: string) =>
      call(app, 'PUT', `/admin/v1/places/${placeId}`, key, { universeId, name: `p${placeId}` })
    assert.equal((await put('100', '9', ADMIN_KEY)).statusCode, 200)
    assert.equal((await put('101', '1', ADMIN_KEY)).statusCode, 200)

    // moving another universe's place into its own, or its own place out, or adding one elsewhere
    for (const [placeId, universeId] of [
      ['100', '1'],
      ['101', '9'],
      ['102', '3'],
    ] as const) {
      const res = await put(placeId, universeId, limited)
      assert.equal(res.statusCode, 403, `${placeId} → ${universeId}: ${res.body}`)
      assert.equal(res.json().error.code, 'FORBIDDEN')
      assert.match(res.json().error.message, /limited to universes 1, 2/)
    }
    const place = (id: string) => call(app, 'GET', `/admin/v1/places/${id}`, ADMIN_KEY)
    assert.equal((await place('100')).json().universeId, '9')
    assert.equal((await place('101')).json().universeId, '1')
    assert.equal((await place('102')).statusCode, 404)
    // within: a new place, and its own moved between its universes
    assert.equal((await put('103', '2', limited)).statusCode, 200)
    assert.equal((await put('101', '2', limited)).statusCode, 200)

    // an import is refused whole, naming the line, before anything is written
    const importBody = (lines: object[]) =>
      app.inject({
        method: 'POST',
        url: '/admin/v1/import',
        headers: { 'x-api-key': limited, 'content-type': 'application/x-ndjson' },
        payload: lines.map((l) => JSON.stringify(l)).join('\n') + '\n',
      })
    const refused = await importBody([
      { type: 'place', placeId: '104', universeId: '1', name: 'new' },
      { type: 'settings', userId: '7', visibility: 'friends' },
      { type: 'place', placeId: '100', universeId: '2', name: 'taken' },
    ])
    assert.equal(refused.statusCode, 403, refused.body)
    assert.equal(refused.json().error.code, 'FORBIDDEN')
    assert.equal(refused.json().error.line, 3)
    assert.match(refused.json().error.message, /^line 3: .*limited to universes 1, 2/)
    assert.equal((await place('104')).statusCode, 404)
    assert.equal((await place('100')).json().universeId, '9')
    const settings = await call(app, 'GET', '/admin/v1/users/7/settings', ADMIN_KEY)
    assert.equal(settings.json().visibility, 'everyone')
    const accepted = await importBody([
      { type: 'place', placeId: '104', universeId: '1', name: 'new' },
      { type: 'place', placeId: '103', universeId: '1', name: 'moved' },
    ])
    assert.equal(accepted.statusCode, 200, accepted.body)
    assert.equal((await place('104')).json().universeId, '1')
    // the operator's key is bound by nothing
    assert.equal((await put('100', '5', ADMIN_KEY)).statusCode, 200)
  })

  test(`${mode}: a universe-limited admin key makes and changes only webhooks filtered within its universes`, async (t) => {
    const { app } = await start(t)
    const limited = (await limitedAdmin(app)).secret
    const reader = (await createKey(app, { name: 'reader', scopes: ['presence:read'] })).json().id
    const hook = { url: 'https://receiver.example/hooks', keyId: reader }
    // every user's changes, or another universe's
    for (const filter of [
      undefined,
      { universes: [] },
      { universes: ['1', '9'] },
      { users: ['7'] },
    ]) {
      const res = await call(app, 'POST', '/admin/v1/webhooks', limited, { ...hook, filter })
      assert.equal(res.statusCode, 403, `${JSON.stringify(filter)}: ${res.statusCode}`)
      assert.equal(res.json().error.code, 'FORBIDDEN')
      assert.match(res.json().error.message, /limited to universes 1, 2/)
    }
    const own = await call(app, 'POST', '/admin/v1/webhooks', limited, {
      ...hook,
      filter: { universes: ['2'] },
    })
    assert.equal(own.statusCode, 201, own.body)
    const operators = await call(app, 'POST', '/admin/v1/webhooks', ADMIN_KEY, hook)
    assert.equal(operators.statusCode, 201, operators.body)
    const ownUrl = `/admin/v1/webhooks/${own.json().id}`
    const theirsUrl = `/admin/v1/webhooks/${operators.json().id}`
    // the operators' endpoint sees every user: pointing it elsewhere, or narrowing it to its own
    // universes, or deleting it, is beyond the limited key
    for (const body of [
      { url: 'https://elsewhere.example/hooks' },
      { filter: { universes: ['1'] } },
    ]) {
      const res = await call(app, 'PATCH', theirsUrl, limited, body)
      assert.equal(res.statusCode, 403, `${JSON.stringify(body)}: ${res.body}`)
    }
    assert.equal((await call(app, 'DELETE', theirsUrl, limited)).statusCode, 403)
    // nor may its own endpoint be widened
    for (const filter of [{ universes: [] }, { universes: ['9'] }]) {
      const res = await call(app, 'PATCH', ownUrl, limited, { filter })
      assert.equal(res.statusCode, 403, `${JSON.stringify(filter)}: ${res.body}`)
    }
    const theirs = await call(app, 'GET', theirsUrl, ADMIN_KEY)
    assert.equal(theirs.json().url, hook.url)
    assert.deepEqual(theirs.json().filter.universes, [])
    assert.deepEqual((await call(app, 'GET', ownUrl, ADMIN_KEY)).json().filter.universes, ['2'])
    // within its universes it changes and deletes its own
    const narrowed = await call(app, 'PATCH', ownUrl, limited, {
      filter: { universes: ['1', '2'] },
      description: 'studio',
    })
    assert.equal(narrowed.statusCode, 200, narrowed.body)
    assert.equal((await call(app, 'DELETE', ownUrl, limited)).statusCode, 204)
    assert.equal((await call(app, 'DELETE', theirsUrl, ADMIN_KEY)).statusCode, 204)
  })
}
