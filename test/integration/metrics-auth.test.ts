import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * Issue 15, item 5: /metrics counts live users, invisible ones included, and its per-route
 * counters move on settings changes; beside the dashboard's public counts that tells how many
 * users are hidden. Only the operator may scrape it, with the metrics key or the admin key.
 */

const METRICS_KEY = 'metrics-key-of-the-test'

test('metrics need the metrics or admin key: anonymous scrapers cannot count hidden users', async (t) => {
  const { url, service, tokens } = await startApp(t, {
    listen: true,
    config: { metricsKey: METRICS_KEY },
  })
  // one user online and invisible: the public dashboard counts nobody, the live gauge one
  const hidden = '6001' as UserId
  await service.heartbeat({
    userId: hidden,
    key: 'app',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online' },
  })
  const token = await tokens.issue(hidden)
  const settings = await fetch(`${url}/v1/presence/settings`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ invisible: true }),
  })
  assert.equal(settings.status, 200)

  const scrape = (headers: Record<string, string> = {}) => fetch(`${url}/metrics`, { headers })
  for (const headers of [
    {} as Record<string, string>,
    { authorization: 'Bearer wrong' },
    { authorization: `Bearer ${METRICS_KEY}x` },
    { authorization: `Basic ${Buffer.from(`x:${METRICS_KEY}`).toString('base64')}` },
    { 'x-api-key': 'wrong' },
    // a user's token is no metrics credential
    { authorization: `Bearer ${token}` },
  ]) {
    const refused = await scrape(headers)
    assert.equal(refused.status, 401, JSON.stringify(headers))
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer realm="metrics"')
    const body = await refused.text()
    assert.deepEqual(JSON.parse(body).error.code, 'UNAUTHENTICATED')
    assert.doesNotMatch(body, /presenced_/)
  }
  // Prometheus: `authorization: {credentials: …}` or `bearer_token`; or an x-api-key header
  for (const headers of [
    { authorization: `Bearer ${METRICS_KEY}` } as Record<string, string>,
    { 'x-api-key': METRICS_KEY },
    { authorization: `Bearer ${ADMIN_KEY}` },
  ]) {
    const scraped = await scrape(headers)
    assert.equal(scraped.status, 200, JSON.stringify(headers))
    const text = await scraped.text()
    assert.match(text, /^presenced_live_users 1$/m)
    assert.match(text, /route="\/v1\/presence\/settings"/)
  }
})

test('without a metrics key or an admin key, /metrics is off', async (t) => {
  const { url } = await startApp(t, {
    listen: true,
    config: { metricsKey: undefined, adminKey: undefined },
  })
  const response = await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer anything' } })
  assert.equal(response.status, 404)
  assert.deepEqual(await response.json(), {
    error: {
      code: 'METRICS_OFF',
      message: 'Metrics are off: set PRESENCED_METRICS_KEY and scrape with it as a bearer token.',
    },
  })
})

test('an API key with the admin scope opens /metrics as the admin key does; other keys are 403, revoked ones 401', async (t) => {
  const { url, app } = await startApp(t, { listen: true, config: { metricsKey: METRICS_KEY } })
  const create = async (scopes: string[]) => {
    const res = await app.inject({
      method: 'POST',
      url: '/admin/v1/keys',
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: 'scraper', scopes }),
    })
    assert.equal(res.statusCode, 201, res.body)
    return res.json() as { id: string; secret: string }
  }
  const admin = await create(['admin'])
  const reader = await create(['presence:read', 'presence:write'])
  const scrape = (headers: Record<string, string>) => fetch(`${url}/metrics`, { headers })

  for (const headers of [
    { authorization: `Bearer ${admin.secret}` } as Record<string, string>,
    { 'x-api-key': admin.secret },
  ]) {
    const scraped = await scrape(headers)
    assert.equal(scraped.status, 200, JSON.stringify(headers))
    assert.match(await scraped.text(), /^presenced_live_users \d+$/m)
  }

  const refused = await scrape({ authorization: `Bearer ${reader.secret}` })
  assert.equal(refused.status, 403)
  const body = await refused.text()
  assert.deepEqual(JSON.parse(body).error.code, 'SCOPE_MISSING')
  assert.match(body, /required scope: admin/)
  assert.doesNotMatch(body, /presenced_/)

  const revoked = await app.inject({
    method: 'DELETE',
    url: `/admin/v1/keys/${admin.id}`,
    headers: { 'x-api-key': ADMIN_KEY },
  })
  assert.equal(revoked.statusCode, 200, revoked.body)
  const after = await scrape({ authorization: `Bearer ${admin.secret}` })
  assert.equal(after.status, 401)
  assert.equal(after.headers.get('www-authenticate'), 'Bearer realm="metrics"')
})
