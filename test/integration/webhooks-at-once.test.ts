import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startNodePair } from '../helpers/start-node-pair.js'
import { adminFetch } from '../helpers/admin-fetch.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'

/*
 * Changes of one webhook made at once, on one node or on two nodes of a fleet: a webhook deleted
 * while it is being updated stays deleted (the update is answered 404, or lands before the
 * deletion), and two updates of different members both hold (disabling an endpoint is never
 * undone by an edit of its description read before).
 */

const ROUNDS = 30

async function call(
  app: StartedApp,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: () => unknown; text: string }> {
  const { status, text } = await adminFetch(app.url, method, path, body)
  assert.ok(status < 500, `no 5xx: ${method} ${path} ${status} ${text}`)
  return { status, text, json: () => JSON.parse(text) as unknown }
}

async function createHook(app: StartedApp, keyId: string): Promise<string> {
  // disabled: nothing is delivered to the address, which no one listens on
  const created = await call(app, 'POST', '/admin/v1/webhooks', {
    url: 'http://127.0.0.1:9/hook',
    keyId,
    enabled: false,
  })
  assert.equal(created.status, 201, created.text)
  return (created.json() as { id: string }).id
}

async function atOnce(editOn: StartedApp, otherOn: StartedApp): Promise<string[]> {
  const key = await call(editOn, 'POST', '/admin/v1/keys', {
    name: 'hook',
    scopes: ['presence:read'],
  })
  const keyId = (key.json() as { id: string }).id
  const wrong: string[] = []
  for (let i = 0; i < ROUNDS; i++) {
    // an update and a deletion at once: once deleted, gone for good
    const doomed = await createHook(editOn, keyId)
    const [, deleted] = await Promise.all([
      call(editOn, 'PATCH', `/admin/v1/webhooks/${doomed}`, { description: `edit ${i}` }),
      call(otherOn, 'DELETE', `/admin/v1/webhooks/${doomed}`),
    ])
    assert.equal(deleted.status, 204, deleted.text)
    const after = await call(otherOn, 'GET', `/admin/v1/webhooks/${doomed}`)
    if (after.status !== 404) wrong.push(`${doomed} deleted, then found: ${after.text}`)
    // two updates of different members at once: both hold
    const kept = await createHook(editOn, keyId)
    await call(editOn, 'PATCH', `/admin/v1/webhooks/${kept}`, { enabled: true })
    const [disabled, described] = await Promise.all([
      call(otherOn, 'PATCH', `/admin/v1/webhooks/${kept}`, { enabled: false }),
      call(editOn, 'PATCH', `/admin/v1/webhooks/${kept}`, { description: `edit ${i}` }),
    ])
    assert.equal(disabled.status, 200, disabled.text)
    assert.equal(described.status, 200, described.text)
    const hook = (await call(otherOn, 'GET', `/admin/v1/webhooks/${kept}`)).json() as {
      enabled: boolean
      description: string
    }
    if (hook.enabled || hook.description !== `edit ${i}`) {
      wrong.push(
        `${kept}: ${JSON.stringify({ enabled: hook.enabled, description: hook.description })}`,
      )
    }
    await call(editOn, 'DELETE', `/admin/v1/webhooks/${kept}`)
  }
  return wrong
}

test('embedded: a webhook changed twice at once keeps both changes, and stays deleted', async (t) => {
  const app = await startApp(t, { listen: true })
  assert.deepEqual(await atOnce(app, app), [])
})

test('fleet: a webhook changed on two nodes at once keeps both changes, and stays deleted', async (t) => {
  const { a, b } = await startNodePair(t, 'webhooks-at-once')
  assert.deepEqual(await atOnce(a, b), [])
})
