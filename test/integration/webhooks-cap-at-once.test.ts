import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PresenceError } from '../../src/core/errors.js'
import { MAX_WEBHOOKS } from '../../src/service/webhooks/webhooks.js'
import { adminFetch } from '../helpers/admin-fetch.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'

/*
 * Webhooks created at once near the cap (MAX_WEBHOOKS): never more than the cap are kept, on one
 * node or across two nodes of a fleet. Each create the cap refuses is answered 400 with the
 * same message as one refused alone; the others 201. Embedded, the creates are also made
 * through the service directly, all in one tick (requests over HTTP arrive one by one).
 */

const EXISTING = MAX_WEBHOOKS - 5
const AT_ONCE = 20

type Hook = { url: string; keyId: string; enabled: boolean }

/** One create through the service itself: its status and message, as the admin API answers. */
async function direct(node: StartedApp, hook: Hook): Promise<{ status: number; text: string }> {
  try {
    await node.service.webhooks.create(hook)
    return { status: 201, text: '' }
  } catch (error) {
    if (!(error instanceof PresenceError)) throw error
    return { status: error.status, text: error.message }
  }
}

async function fillAndRace(nodes: StartedApp[], throughService = false): Promise<void> {
  const first = nodes[0]!
  const key = await adminFetch(first.url, 'POST', '/admin/v1/keys', {
    name: 'hooks',
    scopes: ['presence:read'],
  })
  assert.equal(key.status, 201, key.text)
  const keyId = (JSON.parse(key.text) as { id: string }).id
  // disabled: nothing is delivered to the address, which no one listens on
  const hook = { url: 'http://127.0.0.1:9/hook', keyId, enabled: false }
  for (let i = 0; i < EXISTING; i++) await first.service.webhooks.create(hook)

  const answers = await Promise.all(
    Array.from({ length: AT_ONCE }, (_, i) => {
      const node = nodes[i % nodes.length]!
      if (throughService && i % 2 === 0) return direct(node, hook)
      return adminFetch(node.url, 'POST', '/admin/v1/webhooks', hook)
    }),
  )
  const statuses = answers.map((a) => a.status).sort()
  const created = statuses.filter((s) => s === 201).length
  assert.equal(created, MAX_WEBHOOKS - EXISTING, `statuses: ${statuses.join(' ')}`)
  assert.equal(statuses.filter((s) => s === 400).length, AT_ONCE - created)
  for (const refused of answers.filter((a) => a.status === 400)) {
    assert.match(refused.text, /at most 100 webhooks; delete one first/)
  }
  for (const node of nodes) {
    const listed = await adminFetch(node.url, 'GET', '/admin/v1/webhooks')
    assert.equal(listed.status, 200, listed.text)
    const body = JSON.parse(listed.text) as { webhooks?: unknown[] } | unknown[]
    const hooks = Array.isArray(body) ? body : body.webhooks!
    assert.equal(hooks.length, MAX_WEBHOOKS)
  }
  // one more, alone, is refused the same way
  const more = await adminFetch(first.url, 'POST', '/admin/v1/webhooks', hook)
  assert.equal(more.status, 400, more.text)
}

test(`embedded: ${AT_ONCE} webhooks created at once with ${EXISTING} kept never exceed the cap`, async (t) => {
  const app = await startApp(t, { listen: true })
  await fillAndRace([app], true)
})

test(`fleet: ${AT_ONCE} webhooks created at once on two nodes with ${EXISTING} kept never exceed the cap`, async (t) => {
  const { a, b } = await startNodePair(t, 'webhooks-cap-at-once')
  await fillAndRace([a, b])
})
