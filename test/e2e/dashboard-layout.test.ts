import assert from 'node:assert/strict'
import { mkdirSync, statSync } from 'node:fs'
import { test } from 'node:test'
import type { Page } from 'playwright-core'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { OUTPUT, openPage, skipWithoutChromium } from './chromium.js'

interface Box {
  x: number
  y: number
  width: number
  height: number
}

function intersects(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
}

async function box(page: Page, selector: string): Promise<Box> {
  const found = await page.locator(selector).boundingBox()
  assert.ok(found, `${selector} is laid out`)
  return found
}

async function waitText(page: Page, selector: string, expected: string): Promise<void> {
  await page.waitForFunction(
    ([s, e]) => document.querySelector(s!)?.textContent?.trim() === e,
    [selector, expected] as const,
    { timeout: 10_000 },
  )
}

/** The layout facts that hold whatever the data: nothing overlaps, nothing overflows. */
async function assertLayout(page: Page, width: number): Promise<void> {
  const title = await box(page, '#chart-title')
  const legend = await box(page, '#chart-legend')
  assert.ok(
    !intersects(title, legend),
    `chart legend ${JSON.stringify(legend)} overlaps its title ${JSON.stringify(title)}`,
  )
  await assertNoOverflow(page, width)

  const chart = await page.evaluate(() => {
    const svg = document.querySelector<SVGSVGElement>('#chart')!
    const grid = document.querySelector('#chart line.grid')!
    const points = (document.querySelector('#chart polyline.online')?.getAttribute('points') ?? '')
      .trim()
      .split(/\s+/)
      .map((p) => Number(p.split(',')[0]))
    const labels = Array.from(svg.querySelectorAll('text')).map((t) => {
      const r = t.getBoundingClientRect()
      return { x: r.x, y: r.y, width: r.width, height: r.height, text: t.textContent }
    })
    return {
      drawnWidth: svg.viewBox.baseVal.width,
      shownWidth: svg.getBoundingClientRect().width,
      plotLeft: Number(grid.getAttribute('x1')),
      plotRight: Number(grid.getAttribute('x2')),
      lineLeft: Math.min(...points),
      lineRight: Math.max(...points),
      labels,
    }
  })
  assert.deepEqual(
    await page.evaluate(() =>
      Array.from(document.querySelectorAll('#chart polyline')).map((l) => l.getAttribute('class')),
    ),
    ['online', 'ingame'],
    'the in-game line is painted over the online one: it shows when every online user is in a game',
  )
  assert.ok(
    Math.abs(chart.drawnWidth - chart.shownWidth) <= 2,
    `the chart is drawn at its own size, not stretched: ${chart.drawnWidth} vs ${chart.shownWidth}`,
  )
  // a fresh server's few samples fill the plot: no lone spike at its right edge
  assert.ok(
    chart.lineLeft <= chart.plotLeft + 1 && chart.lineRight >= chart.plotRight - 1,
    `the online line spans the plot: ${JSON.stringify(chart)}`,
  )
  for (const [i, a] of chart.labels.entries()) {
    for (const b of chart.labels.slice(i + 1)) {
      assert.ok(!intersects(a, b), `axis labels ${a.text} and ${b.text} overlap`)
    }
  }
}

/** Nothing wider than the viewport: no sideways scrolling. */
async function assertNoOverflow(page: Page, width: number): Promise<void> {
  const overflow = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
    wide: Array.from(document.querySelectorAll('body *'))
      .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
      .map((e) => `${e.tagName}#${e.id}.${e.className}`)
      .slice(0, 5),
  }))
  assert.ok(
    overflow.scroll <= overflow.client && overflow.wide.length === 0,
    `horizontal overflow at ${width} px: ${JSON.stringify(overflow)}`,
  )
}

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(OUTPUT, { recursive: true })
  const path = `${OUTPUT}${name}.png`
  await page.screenshot({ path, fullPage: true })
  assert.ok(statSync(path).size > 10_000, `${path} holds a picture`)
}

async function registerAppPresence(presenced: StartedApp, userId: string, body: string) {
  const token = await presenced.tokens.issue(userId as UserId)
  const response = await fetch(`${presenced.url}/v1/presence/register-app-presence`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  })
  assert.equal(response.status, 200, await response.text())
}

for (const width of [1366, 390]) {
  test(
    `dashboard at ${width} px: empty feed waits, chart fills, legend clear of its title, feed rows named like the top lists`,
    { skip: skipWithoutChromium, timeout: 60_000 },
    async (t) => {
      const presenced = await startApp(t, { listen: true })
      const { service } = presenced
      await service.putPlace({
        placeId: '1818',
        universeId: '13058',
        rootPlaceId: '1818',
        name: 'Crossroads',
      })
      await service.putTitle({ titleId: '1234', name: 'Forza Horizon', strings: {} })
      const response = await fetch(`${presenced.url}/admin/v1/users/5/settings`, {
        method: 'PUT',
        headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ visibility: 'friends' }),
      })
      assert.equal(response.status, 200)

      const page = await openPage(t, { width, height: 900 })
      const pageErrors: string[] = []
      page.on('pageerror', (error) => pageErrors.push(error.message))
      await page.goto(`${presenced.url}/dashboard`)
      await page.locator('#feed-status[data-state="live"]').waitFor({ timeout: 10_000 })
      await waitText(page, '#t-online', '0')

      // a fresh server
      assert.equal(await page.locator('#feed li').count(), 0)
      assert.ok(await page.locator('#feed-empty').isVisible(), 'the empty feed says so')
      assert.equal(await page.locator('#feed-empty').textContent(), 'Waiting for changes…')
      assert.equal(
        await page.locator('#note').textContent(),
        'Public view: invisible users count as offline.',
      )
      assert.match(
        (await page.locator('#chart-title').textContent()) ?? '',
        /^Concurrent users since \d\d:\d\d:\d\d$/,
      )
      await assertLayout(page, width)
      await screenshot(page, `dashboard-${width}-fresh`)

      // online in a place, online in a title, online with a private location, a move, an end
      await registerAppPresence(presenced, '1', '{"placeId":1818}')
      await service.heartbeat({
        userId: '2' as UserId,
        key: 'title:1234:XboxOne',
        source: 'title',
        deviceType: 'XboxOne',
        activity: { kind: 'online', titleId: '1234' },
      })
      await registerAppPresence(presenced, '5', '{"placeId":1818}')
      await registerAppPresence(presenced, '1', '{"location":"Studio"}')
      await service.heartbeat({
        userId: '6' as UserId,
        key: 'app:PC',
        source: 'app',
        deviceType: 'PC',
        activity: { kind: 'online' },
      })
      await service.endSession('6' as UserId, 'app:PC')
      await page.waitForFunction(() => document.querySelectorAll('#feed li').length === 6, null, {
        timeout: 10_000,
      })
      await waitText(page, '#t-online', '3')
      assert.ok(await page.locator('#feed-empty').isHidden())

      const rows = await page.$$eval('#feed li', (items) =>
        items.map((li) => ({
          type: (li as HTMLElement).dataset.type,
          label: li.querySelector('.type')?.textContent,
          where: li.querySelector('.where')?.textContent,
          named: Array.from(li.querySelectorAll('.named')).map((n) => ({
            name: n.querySelector('.name')?.textContent,
            id: n.querySelector('.id')?.textContent,
          })),
          cells: Array.from(li.children).map((c) => {
            const r = c.getBoundingClientRect()
            return { x: r.x, y: r.y, width: r.width, height: r.height }
          }),
        })),
      )
      // newest first; every row says its event type, in the same place, the same way
      assert.deepEqual(
        rows.map((r) => [r.type, r.label]),
        [
          ['offline', 'offline'],
          ['online', 'online'],
          ['update', 'update'],
          ['online', 'online'],
          ['online', 'online'],
          ['online', 'online'],
        ],
      )
      assert.equal(rows[0]!.where, 'session ended')
      assert.equal(rows[2]!.where, 'in studio · Studio', 'the location the client reported')
      assert.equal(rows[3]!.where, 'in game', 'a private location is not shown')
      assert.deepEqual(rows[4]!.named, [{ name: 'Forza Horizon', id: '1234' }])
      assert.deepEqual(rows[5]!.named, [{ name: 'Crossroads', id: '1818' }])
      for (const row of rows) {
        for (const [i, a] of row.cells.entries()) {
          for (const b of row.cells.slice(i + 1)) {
            assert.ok(!intersects(a, b), `feed cells overlap: ${JSON.stringify(row)}`)
          }
        }
      }
      // the top lists name the same things the same way
      const topName = (list: string) =>
        page.$eval(`#${list} tr`, (tr) => ({
          name: tr.querySelector('.name')?.textContent,
          id: tr.querySelector('.id')?.textContent,
        }))
      assert.deepEqual(await topName('top-places'), rows[5]!.named[0])
      assert.deepEqual(await topName('top-titles'), rows[4]!.named[0])

      assert.equal(
        await page.locator('#note').textContent(),
        'Public view: invisible users count as offline. 1 online user shares their location' +
          ' only with friends or with nobody, so they are not in the top lists.',
      )
      await assertLayout(page, width)
      await screenshot(page, `dashboard-${width}`)

      // the operators' view: ids, every session of a looked-up user; still nothing overflows
      await page.fill('#admin-key', ADMIN_KEY)
      await page.click('#key-use')
      await page.locator('#feed-status[data-state="live"]').waitFor({ timeout: 10_000 })
      await waitText(page, '#t-online', '3')
      await page.fill('#lookup-id', '2')
      await page.click('#lookup-form button')
      await page.locator('#lookup-result table').waitFor()
      assert.match((await page.locator('#lookup-result table').textContent()) ?? '', /title:1234/)
      await assertLayout(page, width)
      await screenshot(page, `dashboard-${width}-admin`)
      assert.deepEqual(pageErrors, [])
    },
  )
}
