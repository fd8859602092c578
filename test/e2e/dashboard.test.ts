import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { test } from 'node:test'
import type { Page } from 'playwright-core'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { OUTPUT, openPage, skipWithoutChromium } from './chromium.js'
/** The page (HTML, script, style, icon) must stay small: a few hundred KB at most. */
const PAGE_BUDGET_BYTES = 300 * 1024

const PLAYER = '9007199254740993' as UserId
const HIDDEN = '9007199254740995' as UserId
const NEVER_SEEN = '9007199254740997'
const GAME = '6f1e0c0e-8c5e-4a55-9d8c-0e7e3b1f3f11'

async function admin(presenced: StartedApp, method: string, path: string, body?: unknown) {
  const response = await fetch(`${presenced.url}/admin/v1${path}`, {
    method,
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${await response.clone().text()}`)
}

/** A heartbeat through the Roblox API, as a Roblox client sends it. */
async function registerAppPresence(presenced: StartedApp, userId: UserId, body: string) {
  const token = await presenced.tokens.issue(userId)
  const response = await fetch(`${presenced.url}/v1/presence/register-app-presence`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  })
  assert.equal(response.status, 200, await response.text())
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).textContent())?.trim() ?? ''
}

/** Waits until the element's text is `expected` (the page updates itself; no reload). */
async function waitText(page: Page, selector: string, expected: string): Promise<void> {
  await page.waitForFunction(
    ([s, e]) => document.querySelector(s!)?.textContent?.trim() === e,
    [selector, expected] as const,
    { timeout: 10_000 },
  )
}

test(
  'dashboard in headless Chromium: counts and feed move without a reload, lookup, admin view',
  { skip: skipWithoutChromium, timeout: 60_000 },
  async (t) => {
    const presenced = await startApp(t, { listen: true })
    const origin = new URL(presenced.url).origin
    await admin(presenced, 'PUT', '/places/1818', { universeId: 13058, name: 'Crossroads' })
    await admin(presenced, 'PUT', `/users/${HIDDEN}/settings`, { invisible: true })

    const page = await openPage(t, { width: 1280, height: 1000 })
    const foreign: string[] = []
    page.on('request', (request) => {
      if (new URL(request.url()).origin !== origin) foreign.push(request.url())
    })
    const pageErrors: string[] = []
    page.on('pageerror', (error) => pageErrors.push(error.message))
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text())
    })

    await page.goto(`${presenced.url}/dashboard`)
    await page.locator('#feed-status[data-state="live"]').waitFor({ timeout: 10_000 })
    await waitText(page, '#t-online', '0')
    assert.equal(await text(page, '#mode'), 'embedded')
    assert.equal(await text(page, '#t-nodes'), '1')

    // Page weight: everything the page is made of, as the browser decoded it.
    const weight = await page.evaluate(() => {
      const [navigation] = performance.getEntriesByType(
        'navigation',
      ) as PerformanceNavigationTiming[]
      const assets = (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
        .filter((r) => new URL(r.name).pathname.startsWith('/dashboard/'))
        .map((r) => r.decodedBodySize)
      return { html: navigation!.decodedBodySize, assets }
    })
    const total = weight.html + weight.assets.reduce((sum, n) => sum + n, 0)
    assert.ok(weight.assets.length >= 3, `script, style and icon loaded: ${weight.assets}`)
    assert.ok(total > 0 && total < PAGE_BUDGET_BYTES, `page weight ${total} bytes`)
    t.diagnostic(`page weight: ${total} bytes (${weight.html} HTML + assets ${weight.assets})`)

    // An invisible user plays first: whatever the page shows after the visible one's change
    // was computed after the invisible one's too, and must not count it.
    await registerAppPresence(presenced, HIDDEN, `{"placeId":1818,"gameId":"${GAME}"}`)
    await registerAppPresence(presenced, PLAYER, `{"placeId":1818,"gameId":"${GAME}"}`)

    await page.locator('#feed li').first().waitFor({ timeout: 10_000 })
    await waitText(page, '#t-online', '1')
    await waitText(page, '#t-ingame', '1')
    assert.equal(await text(page, '#t-sessions'), '1')
    assert.equal(await text(page, '#t-away'), '0')
    assert.match(await text(page, '#top-universes'), /Crossroads\s*13058\s*1/)
    assert.match(await text(page, '#top-places'), /Crossroads\s*1818\s*1/)
    // the public feed: one change (not the invisible user's), a pseudonym, a public place
    const items = page.locator('#feed li')
    assert.equal(await items.count(), 1)
    const item = await text(page, '#feed li')
    assert.match(item, /online/)
    assert.match(item, /Crossroads\s*1818/)
    const pseudonym = await text(page, '#feed li .who')
    assert.match(pseudonym, /^[A-Za-z0-9_-]{8}$/)
    const body = (await page.locator('body').textContent()) ?? ''
    assert.ok(!body.includes(PLAYER) && !body.includes(HIDDEN), 'no user id in the public view')
    assert.ok(await page.locator('.admin-only').isHidden(), 'no invisible count in public')

    // Lookup without a key: the public Roblox view, ids exact.
    await page.fill('#lookup-id', PLAYER)
    await page.click('#lookup-form button')
    await page.locator('#lookup-result dl').waitFor()
    const record = await text(page, '#lookup-result')
    assert.match(record, new RegExp(`user${PLAYER}`))
    assert.match(record, /stateInGame/)
    assert.match(record, /locationCrossroads/)
    await page.fill('#lookup-id', HIDDEN)
    await page.click('#lookup-form button')
    await page.waitForFunction(
      (id) => document.querySelector('#lookup-result')?.textContent?.includes(id),
      HIDDEN,
    )
    const hiddenRecord = await text(page, '#lookup-result')
    assert.match(hiddenRecord, /stateOffline/)
    // an invisible player reads exactly as a user who was never online
    await page.fill('#lookup-id', NEVER_SEEN)
    await page.click('#lookup-form button')
    await page.waitForFunction(
      (id) => document.querySelector('#lookup-result')?.textContent?.includes(id),
      NEVER_SEEN,
    )
    assert.equal(
      (await text(page, '#lookup-result')).replace(NEVER_SEEN, '<id>'),
      hiddenRecord.replace(HIDDEN, '<id>'),
    )

    // With the admin key: ids in the feed, the invisible user counted apart, sessions.
    await page.fill('#admin-key', ADMIN_KEY)
    await page.click('#key-use')
    await page.locator('#key-state[data-state="admin"]').waitFor()
    await page.locator('#feed-status[data-state="live"]').waitFor({ timeout: 10_000 })
    await waitText(page, '#t-invisible', '1')
    await waitText(page, '#t-online', '2')
    await registerAppPresence(presenced, PLAYER, '{"location":"Studio"}')
    await page.waitForFunction(
      (id) => document.querySelector('#feed li .who')?.textContent === id,
      PLAYER,
      { timeout: 10_000 },
    )
    await waitText(page, '#t-instudio', '1')
    await page.fill('#lookup-id', PLAYER)
    await page.click('#lookup-form button')
    await page.locator('#lookup-result table').waitFor()
    const sessions = await text(page, '#lookup-result table')
    assert.match(sessions, /app:Studio/)
    assert.match(sessions, /app:Web/)
    assert.match(sessions, /inGame.*universe 13058, place 1818/)

    mkdirSync(OUTPUT, { recursive: true })
    await page.screenshot({ path: `${OUTPUT}dashboard.png`, fullPage: true })
    assert.deepEqual(foreign, [], 'the page makes no request to another origin')
    assert.deepEqual(pageErrors, [], 'no script errors')
  },
)

test(
  "dashboard in headless Chromium: a user's own text that looks like a long number breaks neither the feed nor the lookup",
  { skip: skipWithoutChromium, timeout: 60_000 },
  async (t) => {
    const presenced = await startApp(t, { listen: true })
    const page = await openPage(t, { width: 1280, height: 1000 })
    const pageErrors: string[] = []
    page.on('pageerror', (error) => pageErrors.push(error.message))
    await page.goto(`${presenced.url}/dashboard`)
    await page.locator('#feed-status[data-state="live"]').waitFor({ timeout: 10_000 })

    // the location is the client's own text: JSON inside it is text, not a number to keep exact
    const location = 'Lobby,12345678901234567890,[98765432109876543210]'
    await registerAppPresence(presenced, PLAYER, JSON.stringify({ location }))
    await page.waitForFunction(
      (l) => document.querySelector('#feed li .where')?.textContent === l,
      location,
      { timeout: 10_000 },
    )
    assert.equal(await page.locator('#feed-status').getAttribute('data-state'), 'live')
    // a later change of someone else still comes through on the same stream
    await registerAppPresence(presenced, HIDDEN, '{}')
    await page.waitForFunction(() => document.querySelectorAll('#feed li').length === 2, null, {
      timeout: 10_000,
    })
    assert.equal(await page.locator('#feed-status').getAttribute('data-state'), 'live')

    await page.fill('#lookup-id', PLAYER)
    await page.click('#lookup-form button')
    await page.locator('#lookup-result dl').waitFor({ timeout: 10_000 })
    assert.ok((await text(page, '#lookup-result')).includes(`location${location}`))
    assert.deepEqual(pageErrors, [], 'no script errors')
  },
)

test(
  "dashboard in headless Chromium: the public lookup is anonymous even when the browser holds a user's cookie",
  { skip: skipWithoutChromium, timeout: 60_000 },
  async (t) => {
    const presenced = await startApp(t, { listen: true })
    await admin(presenced, 'PUT', `/users/${PLAYER}/settings`, { visibility: 'friends' })
    await admin(presenced, 'PUT', `/users/${PLAYER}/friends/${HIDDEN}`)
    await registerAppPresence(presenced, PLAYER, `{"placeId":1818,"gameId":"${GAME}"}`)
    const page = await openPage(t, { width: 1280, height: 1000 })
    // a web client of the same origin signed its user in with Roblox's cookie (a friend's)
    await page.context().addCookies([
      {
        name: '.ROBLOSECURITY',
        value: await presenced.tokens.issue(HIDDEN),
        url: presenced.url,
      },
    ])
    await page.goto(`${presenced.url}/dashboard`)
    await page.fill('#lookup-id', PLAYER)
    await page.click('#lookup-form button')
    await page.waitForFunction(
      () => !document.querySelector('#lookup-result')?.textContent?.includes('looking up'),
      null,
      { timeout: 10_000 },
    )
    const record = await text(page, '#lookup-result')
    // what anyone sees of a friends-only player: in game, nowhere in particular
    assert.match(record, new RegExp(`user${PLAYER}`))
    assert.match(record, /stateInGame/)
    assert.doesNotMatch(record, /1818/)
  },
)

test(
  'dashboard in headless Chromium: a refused admin key is forgotten, not sent again every few seconds',
  { skip: skipWithoutChromium, timeout: 60_000 },
  async (t) => {
    const presenced = await startApp(t, { listen: true })
    const page = await openPage(t, { width: 1280, height: 1000 })
    const withKey: string[] = []
    page.on('request', (request) => {
      if (request.headers()['x-api-key'] !== undefined) withKey.push(request.url())
    })
    await page.goto(`${presenced.url}/dashboard`)
    await page.locator('#feed-status[data-state="live"]').waitFor({ timeout: 10_000 })
    // a typo: an unknown key is a guessed credential, and 20 a minute from one address have the
    // server refuse every credential from it (the operator's users behind the same NAT too)
    await page.fill('#admin-key', 'a-key-with-a-typo')
    await page.click('#key-use')
    await page.locator('#key-state[data-state="refused"]').waitFor({ timeout: 10_000 })
    await new Promise((resolve) => setTimeout(resolve, 6000))
    assert.ok(withKey.length <= 2, `the refused key was sent ${withKey.length} times`)
    // the page goes on with the public view
    await page.locator('#feed-status[data-state="live"]').waitFor({ timeout: 10_000 })
    assert.equal(await page.evaluate(() => sessionStorage.length), 0)
    const token = await presenced.tokens.issue(PLAYER)
    const response = await fetch(`${presenced.url}/v1/presence/register-app-presence`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    })
    assert.equal(response.status, 200)
  },
)
