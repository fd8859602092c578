import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import { ADMIN_KEY, type StartedApp } from '../helpers/start-app.js'
import { FAST_WEBHOOKS } from '../helpers/webhook-endpoint.js'
import { startReceiver } from '../helpers/webhook-receiver.js'
import { NativeClient } from '../integration/native-client.js'
import { SseClient } from '../integration/sse-client.js'

/*
 * The promise audit across the nodes of a fleet: a privacy change, a revocation or a logout made
 * on node A holds on node B from the moment A answered, on every surface B serves: Roblox reads
 * (the lean path, anonymous and signed in), the Xbox batch, and the streams B holds.
 */

async function http(
  node: StartedApp,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: object,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${node.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) }
}

async function ok(node: StartedApp, method: string, path: string, headers = {}, body?: object) {
  const res = await http(node, method, path, headers, body)
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

const bearer = async (node: StartedApp, id: string) => ({
  authorization: `Bearer ${await node.tokens.issue(id as UserId)}`,
})
const admin = { 'x-api-key': ADMIN_KEY }

async function playOn(node: StartedApp, id: string) {
  await ok(node, 'POST', '/v1/presence/register-app-presence', await bearer(node, id), {
    location: 'Game',
    placeId: 1818,
    disconnect: false,
  })
}

/** What `viewer` (undefined: anonymous) sees of `target` on `node`'s Roblox and Xbox reads. */
async function seen(node: StartedApp, viewer: string | undefined, target: string) {
  const headers = viewer === undefined ? {} : await bearer(node, viewer)
  const roblox = (await ok(node, 'POST', '/v1/presence/users', headers, {
    userIds: [target],
  })) as { userPresences: { userPresenceType: number; placeId: unknown }[] }
  const r = roblox.userPresences[0]!
  const result: Record<string, unknown> = { type: r.userPresenceType, placeId: r.placeId }
  if (viewer !== undefined) {
    const xbox = (await ok(
      node,
      'POST',
      '/users/batch',
      {
        authorization: `XBL3.0 x=0;${await node.tokens.issue(viewer as UserId)}`,
        'x-xbl-contract-version': '3',
      },
      { users: [target], level: 'all' },
    )) as { state: string; devices?: unknown[] }[]
    result.xbox = xbox[0]!.state
    result.xboxDevices = xbox[0]!.devices !== undefined
  }
  return result
}

const OFFLINE = { type: 0, placeId: null }
const OFFLINE_XBOX = { ...OFFLINE, xbox: 'Offline', xboxDevices: false }

async function watchOn(node: StartedApp, viewer: string, target: string) {
  const ws = await NativeClient.connect(node.url, await node.tokens.issue(viewer as UserId))
  ws.send({ type: 'subscribe', ids: [target] })
  await ws.waitFor((f) => f.type === 'snapshot')
  const sse = await SseClient.open(node.url, await node.tokens.issue(viewer as UserId), [target])
  await sse.waitFor((e) => e.data.type === 'snapshot')
  return { ws, sse }
}

for (const change of ['invisible', 'block', 'blocked', 'unfriend'] as const) {
  test(`fleet: ${change} on node A hides the user on node B at once, on every surface`, async (t) => {
    const { a, b } = await startNodePair(t, `x-${change}`)
    const [target, viewer] = ['8101', '8102']
    await ok(a, 'PUT', `/admin/v1/users/${target}/friends/${viewer}`, admin)
    if (change === 'unfriend') {
      await ok(a, 'PUT', '/v1/presence/settings', await bearer(a, target), {
        visibility: 'friends',
      })
    }
    await playOn(a, target)
    assert.deepEqual(await seen(b, viewer, target), {
      type: 2,
      placeId: 1818,
      xbox: 'Online',
      xboxDevices: true,
    })
    const { ws, sse } = await watchOn(b, viewer, target)
    t.after(() => {
      ws.socket.terminate()
      sse.close()
    })

    if (change === 'invisible') {
      await ok(a, 'PUT', '/v1/presence/settings', await bearer(a, target), { invisible: true })
    } else if (change === 'block') {
      await ok(a, 'PUT', `/admin/v1/users/${target}/blocks/${viewer}`, admin)
    } else if (change === 'blocked') {
      await ok(a, 'PUT', `/admin/v1/users/${viewer}/blocks/${target}`, admin)
    } else {
      await ok(a, 'DELETE', `/admin/v1/users/${target}/friends/${viewer}`, admin)
    }

    // no wait: the change is made once A answered
    if (change === 'unfriend') {
      // online without a place, as any non-friend sees them
      const now = await seen(b, viewer, target)
      assert.equal(now.placeId, null, 'no place on B')
      assert.deepEqual(now, await seen(b, '8199', target), 'as a stranger sees them')
    } else {
      assert.deepEqual(await seen(b, viewer, target), OFFLINE_XBOX, 'offline on B')
      if (change === 'invisible') assert.deepEqual(await seen(b, undefined, target), OFFLINE)
    }
    const frame = await ws.waitFor((f) => f.type !== 'pong', 2000)
    const event = await sse.waitFor(() => true, 2000)
    if (change === 'unfriend') {
      assert.equal(frame.type, 'update', JSON.stringify(frame))
      assert.equal(event.data.type, 'update', JSON.stringify(event.data))
    } else {
      assert.equal(frame.type, 'offline', JSON.stringify(frame))
      assert.equal(event.data.type, 'offline', JSON.stringify(event.data))
    }
  })
}

test('fleet: a logout on node A refuses the token on node B at once', async (t) => {
  const { a, b } = await startNodePair(t, 'x-logout')
  const token = await a.tokens.issue('8201' as UserId)
  const headers = { authorization: `Bearer ${token}` }
  await ok(b, 'POST', '/v1/presence/register-app-presence', headers, { location: 'x' })
  // the CSRF challenge answered on B, the logout made on A
  const first = await fetch(`${b.url}/v2/logout`, { method: 'POST', headers })
  const csrf = first.headers.get('x-csrf-token') ?? ''
  await ok(a, 'POST', '/v2/logout', { ...headers, 'x-csrf-token': csrf })
  const res = await http(b, 'POST', '/v1/presence/register-app-presence', headers, {
    location: 'x',
  })
  assert.equal(res.status, 401, JSON.stringify(res.body))
  const read = await http(
    b,
    'POST',
    '/users/batch',
    {
      authorization: `XBL3.0 x=0;${token}`,
      'x-xbl-contract-version': '3',
    },
    { users: ['8201'], level: 'all' },
  )
  assert.equal(read.status, 401, JSON.stringify(read.body))
})

test('fleet: API keys revoked on node A are refused on node B at once, its open feed ended', async (t) => {
  const { a, b } = await startNodePair(t, 'x-key')
  const create = async (scopes: string[]) =>
    (await ok(a, 'POST', '/admin/v1/keys', admin, { name: 'k', scopes })) as {
      id: string
      secret: string
    }
  const [read, write, ops] = [
    await create(['presence:read']),
    await create(['presence:write']),
    await create(['admin']),
  ]
  const uses = {
    roblox: () =>
      http(
        b,
        'POST',
        '/v1/presence/users',
        { 'x-api-key': read.secret },
        {
          userIds: ['1'],
        },
      ),
    xbox: () =>
      http(
        b,
        'POST',
        '/users/batch',
        {
          'x-api-key': read.secret,
          'x-xbl-contract-version': '3',
        },
        { users: ['1'], level: 'all' },
      ),
    servers: () =>
      http(
        b,
        'PUT',
        '/api/v1/servers/4f1e2a60-0000-4000-8000-000000000001',
        {
          'x-api-key': write.secret,
        },
        { placeId: 1818, universeId: 13058, players: ['8501'] },
      ),
    admin: () => http(b, 'GET', '/admin/v1/keys', { 'x-api-key': ops.secret }),
  }
  for (const [name, use] of Object.entries(uses)) {
    const res = await use()
    assert.ok(res.status < 300, `${name} before: ${res.status} ${JSON.stringify(res.body)}`)
  }
  const abort = new AbortController()
  t.after(() => abort.abort())
  const feed = await fetch(`${b.url}/admin/v1/stats/feed`, {
    headers: { 'x-api-key': ops.secret },
    signal: abort.signal,
  })
  assert.equal(feed.status, 200)
  const text = (async () => {
    let all = ''
    const decoder = new TextDecoder()
    for await (const chunk of feed.body as unknown as AsyncIterable<Uint8Array>) {
      all += decoder.decode(chunk, { stream: true })
    }
    return all
  })()

  for (const key of [read, write, ops]) await ok(a, 'DELETE', `/admin/v1/keys/${key.id}`, admin)
  for (const [name, use] of Object.entries(uses)) {
    const res = await use()
    assert.equal(res.status, 401, `${name} after: ${JSON.stringify(res.body)}`)
  }
  // the feed's next delivery asks again: a change made on A reaches B's feed, which ends instead
  await playOn(a, '8502')
  const body = await Promise.race([
    text,
    new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 4000)),
  ])
  assert.match(body, /API_KEY_INVALID/)
  assert.doesNotMatch(body, /8502/)
})

test('fleet: revoking an admin key on node A stops what it made on B: keys down the chain, webhooks, an open feed', async (t) => {
  const { a, b } = await startNodePair(t, 'x-chain', FAST_WEBHOOKS)
  const create = async (node: StartedApp, by: string, scopes: string[]) =>
    (await ok(node, 'POST', '/admin/v1/keys', { 'x-api-key': by }, { name: 'k', scopes })) as {
      id: string
      secret: string
    }
  const operatorsRead = await create(a, ADMIN_KEY, ['presence:read'])
  const leaked = await create(a, ADMIN_KEY, ['admin'])
  // made on either node: the issuer link is in the shared store
  const child = await create(b, leaked.secret, ['admin'])
  const read = await create(a, child.secret, ['presence:read'])
  const listed = (await ok(b, 'GET', '/admin/v1/keys', admin)) as {
    keys: { id: string; issuedBy: string | null }[]
  }
  assert.deepEqual(Object.fromEntries(listed.keys.map((k) => [k.id, k.issuedBy])), {
    [operatorsRead.id]: null,
    [leaked.id]: null,
    [child.id]: leaked.id,
    [read.id]: child.id,
  })
  const made = await startReceiver(t)
  const kept = await startReceiver(t)
  const hook = (await ok(
    b,
    'POST',
    '/admin/v1/webhooks',
    { 'x-api-key': leaked.secret },
    {
      url: made.url,
      keyId: operatorsRead.id,
    },
  )) as { secret: string }
  made.secret = hook.secret
  kept.secret = (
    (await ok(a, 'POST', '/admin/v1/webhooks', admin, {
      url: kept.url,
      keyId: operatorsRead.id,
    })) as { secret: string }
  ).secret

  const uses = {
    roblox: () =>
      http(b, 'POST', '/v1/presence/users', { 'x-api-key': read.secret }, { userIds: ['1'] }),
    xbox: () =>
      http(
        b,
        'POST',
        '/users/batch',
        { 'x-api-key': read.secret, 'x-xbl-contract-version': '3' },
        { users: ['1'], level: 'all' },
      ),
    admin: () => http(b, 'GET', '/admin/v1/keys', { 'x-api-key': child.secret }),
    // Prometheus text, not JSON: only its status matters here
    metrics: async () => {
      const res = await fetch(`${b.url}/metrics`, { headers: { 'x-api-key': child.secret } })
      return { status: res.status, body: (await res.text()).slice(0, 80) }
    },
  }
  for (const [name, use] of Object.entries(uses)) {
    const res = await use()
    assert.ok(res.status < 300, `${name} before: ${res.status} ${JSON.stringify(res.body)}`)
  }
  const abort = new AbortController()
  t.after(() => abort.abort())
  const feed = await fetch(`${b.url}/admin/v1/stats/feed`, {
    headers: { 'x-api-key': child.secret },
    signal: abort.signal,
  })
  assert.equal(feed.status, 200)
  const text = (async () => {
    let all = ''
    const decoder = new TextDecoder()
    for await (const chunk of feed.body as unknown as AsyncIterable<Uint8Array>) {
      all += decoder.decode(chunk, { stream: true })
    }
    return all
  })()
  await playOn(a, '8601')
  for (const r of [made, kept])
    await r.until(() => r.accepted.length === 1, 10_000, 'the first event')

  await ok(a, 'DELETE', `/admin/v1/keys/${leaked.id}`, admin)
  for (const [name, use] of Object.entries(uses)) {
    const res = await use()
    assert.equal(res.status, 401, `${name} after: ${JSON.stringify(res.body)}`)
  }
  // the feed's next delivery asks again, and ends instead
  await playOn(a, '8602')
  const body = await Promise.race([
    text,
    new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 4000)),
  ])
  assert.match(body, /API_KEY_INVALID/)
  assert.doesNotMatch(body, /8602/)
  // the webhook the leaked key made delivers nothing more; the operator's goes on
  await kept.until(() => kept.accepted.length === 2, 10_000, 'the event after the revocation')
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.deepEqual(
    [made, kept].map((r) => r.accepted.map((d) => d.event.userId)),
    [['8601'], ['8601', '8602']],
  )
})

test('fleet: a caller’s request budget is the fleet’s, not each node’s', async (t) => {
  // one clock standing still for both nodes: the windows are aligned on it, and with the real
  // clock the twelve reads could straddle the end of one (a seventh read allowed)
  const clock = new ManualClock(Date.now())
  const { a, b } = await startNodePair(
    t,
    'x-rate',
    { rateLimitMax: 6, rateLimitWindowSeconds: 60 },
    { clock },
  )
  for (const headers of [{}, await bearer(a, '8301')]) {
    const statuses: number[] = []
    for (let i = 0; i < 12; i++) {
      const node = i % 2 === 0 ? a : b
      statuses.push(
        (await http(node, 'POST', '/v1/presence/users', headers, { userIds: ['1'] })).status,
      )
    }
    assert.equal(statuses.filter((s) => s === 200).length, 6, statuses.join(' '))
    assert.equal(statuses.filter((s) => s === 429).length, 6, statuses.join(' '))
  }
})

test('fleet: the public feed of node B shows a user going invisible on A as a sign-out, then nothing', async (t) => {
  const { a, b } = await startNodePair(t, 'x-feed')
  const abort = new AbortController()
  t.after(() => abort.abort())
  const response = await fetch(`${b.url}/api/v1/stats/feed`, { signal: abort.signal })
  assert.equal(response.status, 200)
  const items: { user: string; type: string; reason?: string; where?: unknown }[] = []
  void (async () => {
    let buffer = ''
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          for (const line of buffer.slice(0, end).split('\n')) {
            if (line.startsWith('data: ')) items.push(...JSON.parse(line.slice(6)).items)
          }
          buffer = buffer.slice(end + 2)
        }
      }
    } catch {
      // aborted
    }
  })()
  const until = async (count: number) => {
    const deadline = Date.now() + 5000
    while (items.length < count) {
      assert.ok(Date.now() < deadline, `feed items: ${JSON.stringify(items)}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  await playOn(a, '8601')
  await until(1)
  const user = items[0]!.user
  await ok(a, 'PUT', '/v1/presence/settings', await bearer(a, '8601'), { invisible: true })
  await until(2)
  // moves made while invisible, on both nodes
  await ok(a, 'POST', '/v1/presence/register-app-presence', await bearer(a, '8601'), {
    location: 'Game',
    placeId: 1819,
    disconnect: false,
  })
  await ok(b, 'POST', '/v1/presence/register-app-presence', await bearer(b, '8601'), {
    location: 'Game',
    placeId: 1820,
    disconnect: false,
  })
  // a visible user's change, flushed after the hidden ones would have been
  await playOn(a, '8602')
  await until(3)
  await new Promise((resolve) => setTimeout(resolve, 700))
  const theirs = items.filter((i) => i.user === user).map((i) => i.type)
  assert.equal(theirs.length, 2, JSON.stringify(items))
  assert.equal(items[1]!.user, user)
  assert.deepEqual(theirs, ['online', 'offline'])
  assert.equal(items[1]!.reason, 'explicit', 'went away as an ordinary sign-out')
  assert.equal(items.length, 3, JSON.stringify(items))
})
