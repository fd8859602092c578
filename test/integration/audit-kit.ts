import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import type { WebhookReceiver } from '../helpers/webhook-receiver.js'

/*
 * Steps shared by the privacy audits that compare a surface byte for byte against a twin user
 * (hidden-expiry-audit, shows-more-audit, resume-rules-audit): servers on a manual clock,
 * embedded or in fleet mode on the machine's Redis, writes through the admin API and the
 * service, and what a surface told of a user with its id and numbering left out.
 */

/** When the audits' clocks start. */
export const AUDIT_T0 = Date.UTC(2026, 11, 1, 9)

/**
 * `nodes` presenced servers (listening) on one manual clock with `config`: embedded (one server,
 * returned `nodes` times), or fleet nodes on the machine's Redis under a prefix of their own
 * (`label` names it), deleted when the test ends.
 */
export async function startAudited(
  t: TestContext,
  fleet: boolean,
  label: string,
  config: Partial<Config>,
  nodes = 1,
): Promise<{ apps: StartedApp[]; app: StartedApp; clock: ManualClock }> {
  const clock = new ManualClock(AUDIT_T0)
  const own: Partial<Config> = { ...config }
  if (fleet) {
    const prefix = uniquePrefix(label)
    Object.assign(own, {
      redisUrl: LOCAL_REDIS_URL,
      redisPrefix: prefix,
      redisTimeoutMs: 5000,
      statsIntervalMs: 100,
    })
    t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  }
  const apps: StartedApp[] = []
  for (let i = 0; i < (fleet ? nodes : 1); i++) {
    apps.push(await startApp(t, { clock, listen: true, config: own }))
  }
  while (apps.length < nodes) apps.push(apps[0]!)
  return { apps, app: apps[0]!, clock }
}

export async function call(
  app: StartedApp,
  method: string,
  path: string,
  headers = {},
  body?: unknown,
) {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text }
}

export async function admin(app: StartedApp, method: string, path: string, body?: unknown) {
  const answer = await call(app, method, path, { 'x-api-key': ADMIN_KEY }, body)
  assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${answer.body}`)
  return answer.body === '' ? undefined : (JSON.parse(answer.body) as Record<string, unknown>)
}

/** A presence:read webhook to `receiver`, filtered by `filter` when given. */
export async function hook(app: StartedApp, receiver: WebhookReceiver, filter?: object) {
  const key = await admin(app, 'POST', '/admin/v1/keys', {
    name: 'hook',
    scopes: ['presence:read'],
  })
  const made = await admin(app, 'POST', '/admin/v1/webhooks', {
    url: receiver.url,
    keyId: key!.id,
    ...(filter && { filter }),
  })
  receiver.secret = made!.secret as string
}

/** A heartbeat of `userId`'s app on `device`: in a game at `placeId`, else online. */
export const beat = (app: StartedApp, userId: string, device: string, placeId?: string) =>
  app.service.heartbeat({
    userId: userId as UserId,
    key: `app:${device}`,
    source: 'app',
    deviceType: device,
    activity: placeId ? { kind: 'inGame', placeId } : { kind: 'online' },
  })

/**
 * What a surface told of `id`, its id replaced by `as`, its numbering (`seq`), its history
 * positions (`pos`: a new token each time) and a webhook event's own id left out.
 */
export function told(items: readonly Record<string, unknown>[], id: string, as: string): string[] {
  return items
    .filter((item) => item.userId === id)
    .map((item) =>
      JSON.stringify(item, (key, value: unknown) =>
        key === 'seq' || key === 'pos' || (key === 'id' && String(value).startsWith('evt_'))
          ? undefined
          : value,
      )
        .split(id)
        .join(as),
    )
}

/**
 * Whether anything told (parsed JSON, or JSON text, nested as strings too) names the place
 * `placeId` or its `name`: a value equal to the id, or a string holding the name. Random
 * identifiers (a webhook event's `id`, `webhookId`, history positions) are left out: a hex id
 * holds "1818" now and then.
 */
export function namesPlace(told: unknown, placeId: string, name: string): boolean {
  if (typeof told === 'string') {
    if (told === placeId || told.includes(name)) return true
    if (!/^\s*[[{]/.test(told)) return false
    try {
      return namesPlace(JSON.parse(told) as unknown, placeId, name)
    } catch {
      return told.includes(placeId)
    }
  }
  if (typeof told === 'number' || typeof told === 'bigint') return String(told) === placeId
  if (Array.isArray(told)) return told.some((item) => namesPlace(item, placeId, name))
  if (told !== null && typeof told === 'object') {
    return Object.entries(told).some(
      ([key, item]) =>
        key !== 'id' && key !== 'webhookId' && key !== 'pos' && namesPlace(item, placeId, name),
    )
  }
  return false
}
