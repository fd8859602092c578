// @ts-check
/* global document, window, fetch, sessionStorage, TextDecoderStream, AbortController, setTimeout, clearTimeout, setInterval */
// The presenced dashboard: plain JS served as is (no build step), talking only to its own origin.
// Counts come from GET /api/v1/stats (polled, and refreshed after each feed batch); changes from
// the SSE feed, read with fetch so that the admin key can travel in a header, never in a URL.

const STATS_EVERY_MS = 2000
const FEED_ITEMS = 100
const KEY_STORAGE = 'presenced-admin-key'
const SVG = 'http://www.w3.org/2000/svg'

/** @type {string | null} */
let adminKey = sessionStorage.getItem(KEY_STORAGE)
/** @type {AbortController | undefined} */
let feedAbort
/** @type {ReturnType<typeof setTimeout> | undefined} */
let statsTimer
/** The latest stats answer, kept to redraw the chart on resize. */
let last = /** @type {any} */ (undefined)

const number = new Intl.NumberFormat()
const clock = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
})

/** @param {string} id */
function $(id) {
  const el = document.getElementById(id)
  if (!el) throw new Error(`#${id} missing`)
  return el
}

/**
 * A new element with text content (never HTML: every value shown comes from the network).
 * @param {string} tag
 * @param {string} [className]
 * @param {string | number} [text]
 */
function el(tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = String(text)
  return node
}

/** @returns {Record<string, string>} */
function keyHeaders() {
  return adminKey ? { 'x-api-key': adminKey } : {}
}

/**
 * JSON with 64-bit ids kept exact: integers too long for a double become strings first. String
 * literals are matched first and left as they are: a user's own text (a location, a name) that
 * holds such digits is text, and quoting inside it would break the whole reply.
 * @param {string} text
 */
function parseLossless(text) {
  return JSON.parse(
    text.replace(
      /"(?:[^"\\]|\\.)*"|([:,[]\s*)(-?\d{16,})(?=\s*[,\]}])/g,
      (match, before, digits) => (digits === undefined ? match : `${before}"${digits}"`),
    ),
  )
}

// ---------------------------------------------------------------- stats

async function refreshStats() {
  clearTimeout(statsTimer)
  const key = adminKey
  let again = true
  try {
    const response = await fetch('/api/v1/stats?top=10', {
      headers: keyHeaders(),
      cache: 'no-store',
    })
    const body = parseLossless(await response.text())
    const message = body?.error?.message ?? `HTTP ${response.status}`
    if (response.status === 401 && key !== null && key === adminKey) {
      again = false // keyRefused starts the public view's polling
      keyRefused(message)
      return
    }
    if (!response.ok) throw new Error(message)
    last = body
    renderStats(body)
    $('updated').textContent = `updated ${clock.format(new Date(body.at))}`
    $('updated').classList.remove('error')
  } catch (error) {
    $('updated').textContent = `stats unavailable: ${/** @type {Error} */ (error).message}`
    $('updated').classList.add('error')
  } finally {
    if (again) statsTimer = setTimeout(refreshStats, STATS_EVERY_MS)
  }
}

/** After a feed batch, counts are fresh once the server's one-second cache has turned over. */
let soon = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined)
function refreshStatsSoon() {
  if (soon) return
  soon = setTimeout(() => {
    soon = undefined
    void refreshStats()
  }, 1100)
}

/** @param {any} stats */
function renderStats(stats) {
  const totals = stats.all?.totals ?? stats.totals
  $('mode').textContent = stats.mode
  $('t-online').textContent = number.format(totals.online)
  $('t-ingame').textContent = number.format(totals.inGame)
  $('t-instudio').textContent = number.format(totals.inStudio)
  $('t-away').textContent = number.format(totals.away)
  $('t-sessions').textContent = number.format(totals.sessions)
  $('t-nodes').textContent = stats.nodes > 0 ? number.format(stats.nodes) : '?'
  const invisibleTile = /** @type {HTMLElement} */ (document.querySelector('.admin-only'))
  invisibleTile.hidden = !stats.all
  if (stats.all) $('t-invisible').textContent = number.format(stats.all.invisibleUsers)
  const notes = []
  if (!stats.available) notes.push('This presence store cannot list live users: no counts.')
  if (stats.all) {
    // the series is sampled on the server over public counts only
    notes.push(
      'Admin view: every user is counted, invisible ones included; the chart shows public counts.',
    )
  } else {
    notes.push('Public view: invisible users count as offline.')
    const hidden = totals.locationHidden
    if (hidden > 0) {
      notes.push(
        `${number.format(hidden)} online ${hidden === 1 ? 'user shares' : 'users share'} their` +
          ' location only with friends or with nobody, so they are not in the top lists.',
      )
    }
  }
  $('note').textContent = notes.join(' ')
  const top = stats.all?.top ?? stats.top
  renderTop('top-universes', top.universes)
  renderTop('top-places', top.places)
  renderTop('top-titles', top.titles)
  renderChart(stats)
}

/**
 * @param {string} id
 * @param {Array<{ id: string, name: string | null, users: number }>} entries
 */
function renderTop(id, entries) {
  const table = $(id)
  const rows = []
  const max = entries.reduce((m, e) => Math.max(m, e.users), 0)
  for (const entry of entries) {
    const tr = el('tr')
    const label = el('td')
    label.append(el('span', 'name', entry.name ?? entry.id))
    if (entry.name) label.append(el('span', 'id', entry.id))
    const bar = el('div', 'bar')
    bar.style.width = `${Math.max(2, (entry.users / max) * 100)}%`
    label.append(bar)
    tr.append(label, el('td', 'n', number.format(entry.users)))
    rows.push(tr)
  }
  if (rows.length === 0) {
    const tr = el('tr')
    tr.append(el('td', 'empty', 'nobody'))
    rows.push(tr)
  }
  table.replaceChildren(...rows)
}

// ---------------------------------------------------------------- chart

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attributes
 */
function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value))
  return node
}

const HOUR_MS = 3600_000

/** @param {any} stats */
function renderChart(stats) {
  const chart = $('chart')
  // drawn at the chart's own pixel size, so that text and lines are never stretched
  const width = Math.max(240, Math.round(chart.getBoundingClientRect().width))
  const height = 200
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`)
  const left = 40
  const right = 6
  const top = 8
  const bottom = 20
  const end = stats.at
  /** @type {Array<[number, number, number]>} */
  const points = stats.series.samples.filter(
    (/** @type {number[]} */ s) => s[0] >= end - HOUR_MS && s[0] <= end,
  )
  // the current count, between two samples
  const current = stats.totals
  if (points.length === 0 || points[points.length - 1][0] < end) {
    points.push([end, current.online, current.inGame])
  }
  // a server younger than an hour has fewer samples: the axis spans what there is, so that its
  // first minutes fill the chart rather than a sliver at its right edge
  const start = Math.min(points[0][0], end - 1000)
  const span = end - start
  // one count known: it holds over the whole (short) span
  if (points.length === 1) points.unshift([start, points[0][1], points[0][2]])
  $('chart-title').textContent =
    span >= HOUR_MS - 60_000
      ? 'Concurrent users, last hour'
      : `Concurrent users since ${clock.format(new Date(start))}`
  const peak = points.reduce((m, p) => Math.max(m, p[1], p[2]), 0)
  const yMax = niceCeiling(Math.max(peak, 4))
  const x = (/** @type {number} */ t) => left + ((t - start) / span) * (width - left - right)
  const y = (/** @type {number} */ v) => top + (1 - v / yMax) * (height - bottom - top)
  const nodes = []
  for (const fraction of [0, 0.5, 1]) {
    const value = Math.round(yMax * fraction)
    nodes.push(
      svg('line', { class: 'grid', x1: left, x2: width - right, y1: y(value), y2: y(value) }),
    )
    const label = svg('text', { x: left - 6, y: y(value) + 4, 'text-anchor': 'end' })
    label.textContent = number.format(value)
    nodes.push(label)
  }
  for (const [fraction, anchor] of /** @type {const} */ ([
    [0, 'start'],
    [0.5, 'middle'],
    [1, 'end'],
  ])) {
    const label = svg('text', {
      x: x(start + fraction * span),
      y: height - 4,
      'text-anchor': anchor,
    })
    label.textContent = fraction === 1 ? 'now' : ago((1 - fraction) * span)
    nodes.push(label)
  }
  /** @param {number} index */
  const line = (index) =>
    points.map((p) => `${x(p[0]).toFixed(1)},${y(p[index]).toFixed(1)}`).join(' ')
  const base = y(0).toFixed(1)
  const firstX = x(points[0][0]).toFixed(1)
  const lastX = x(points[points.length - 1][0]).toFixed(1)
  nodes.push(
    svg('polygon', { class: 'area', points: `${firstX},${base} ${line(1)} ${lastX},${base}` }),
  )
  nodes.push(svg('polyline', { class: 'online', points: line(1) }))
  // painted last: in game never exceeds online, so drawn under it the line vanished whenever
  // every online user was in a game (the online area still shows beneath it)
  nodes.push(svg('polyline', { class: 'ingame', points: line(2) }))
  const newest = points[points.length - 1]
  nodes.push(svg('circle', { class: 'now', cx: lastX, cy: y(newest[1]).toFixed(1), r: 3 }))
  chart.replaceChildren(...nodes)
}

/**
 * How long ago, for an axis label: "−30 min", "−45 s".
 * @param {number} ms
 */
function ago(ms) {
  if (ms >= 120_000) return `−${Math.round(ms / 60_000)} min`
  return `−${ms >= 10_000 ? Math.round(ms / 1000) : (ms / 1000).toFixed(1)} s`
}

/**
 * The axis top: 1, 2 or 4 times a power of ten, so that its half is a whole number too.
 * @param {number} value at least 4
 */
function niceCeiling(value) {
  const magnitude = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 2, 4, 10]) if (step * magnitude >= value) return step * magnitude
  return 10 * magnitude
}

// ---------------------------------------------------------------- feed

/** @param {string} state @param {string} text */
function setFeedStatus(state, text) {
  const status = $('feed-status')
  status.dataset.state = state
  status.textContent = text
}

/** Reads the SSE feed with fetch (headers allowed), reconnecting with backoff. */
async function runFeed() {
  feedAbort?.abort()
  const abort = new AbortController()
  feedAbort = abort
  let delay = 1000
  while (!abort.signal.aborted) {
    const key = adminKey
    try {
      const url = key ? '/admin/v1/stats/feed' : '/api/v1/stats/feed'
      const response = await fetch(url, {
        headers: keyHeaders(),
        signal: abort.signal,
        cache: 'no-store',
      })
      if (!response.ok || !response.body) {
        const body = await response.json().catch(() => ({}))
        const message = body?.error?.message ?? `HTTP ${response.status}`
        if (response.status === 401 && key !== null && key === adminKey) {
          keyRefused(message)
          return
        }
        throw new Error(message)
      }
      setFeedStatus('live', adminKey ? 'live · ids' : 'live · anonymised')
      delay = 1000
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          for (const line of event.split('\n')) {
            if (!line.startsWith('data: ')) continue
            const data = parseLossless(line.slice(6))
            // the admin feed ends so when its key is revoked or expires
            if (data.error) {
              if (key !== null && key === adminKey) keyRefused(data.error.message)
              return
            }
            onFeedBatch(data)
          }
        }
      }
      setFeedStatus('connecting', 'reconnecting')
    } catch (error) {
      if (abort.signal.aborted) return
      setFeedStatus('error', /** @type {Error} */ (error).message.slice(0, 80))
    }
    await new Promise((resolve) => setTimeout(resolve, delay))
    delay = Math.min(delay * 2, 15_000)
  }
}

/** @param {{ items: any[], dropped?: number }} batch */
function onFeedBatch(batch) {
  const list = $('feed')
  for (const item of batch.items) list.prepend(feedRow(item))
  if (batch.dropped) {
    const li = el('li')
    li.dataset.type = 'busy'
    li.append(
      el('span', 'time', clock.format(new Date())),
      el('span', 'who', '…'),
      el('span', 'type type-busy', 'busy'),
      el('span', 'where', `${number.format(batch.dropped)} more not shown`),
    )
    list.prepend(li)
  }
  while (list.children.length > FEED_ITEMS) list.lastElementChild?.remove()
  showFeedEmpty()
  refreshStatsSoon()
}

/** The empty feed says what it is waiting for, rather than looking broken. */
function showFeedEmpty() {
  $('feed-empty').hidden = $('feed').children.length > 0
}

const STATE_WORDS = /** @type {Record<string, string>} */ ({
  online: 'online',
  inGame: 'in game',
  inStudio: 'in studio',
  offline: 'offline',
})
const REASON_WORDS = /** @type {Record<string, string>} */ ({
  explicit: 'session ended',
  timeout: 'timed out',
  server_lost: 'game server lost',
  node_lost: 'node lost',
})

/**
 * One row per change: time, who, the event type (online, update, offline, settings: always
 * the type, in the type's colour), then what the user is doing now and where.
 * @param {any} item
 */
function feedRow(item) {
  const li = el('li')
  li.dataset.type = item.type
  const who = item.userId ?? item.user
  const whoCell = el('span', 'who', who)
  whoCell.title = item.userId ? `user ${item.userId}` : 'anonymised (daily pseudonym)'
  if (item.userId) {
    whoCell.classList.add('clickable')
    whoCell.addEventListener('click', () => {
      ;/** @type {HTMLInputElement} */ ($('lookup-id')).value = item.userId
      void lookup(item.userId)
    })
  }
  li.append(
    el('span', 'time', clock.format(new Date(item.at))),
    whoCell,
    el('span', `type type-${item.type}`, item.type),
    describeItem(item),
  )
  return li
}

/** @param {any} item */
function describeItem(item) {
  const cell = el('span', 'where')
  /** @type {Array<Node | string>} */
  const parts = []
  // what the user is doing now; "online" again after the type "online" would only stutter
  if (item.type === 'update' || (item.type === 'online' && item.state !== 'online')) {
    parts.push(el('span', `state-${item.state}`, STATE_WORDS[item.state] ?? item.state))
  }
  if (item.reason) parts.push(REASON_WORDS[item.reason] ?? item.reason)
  if (item.type === 'settings') {
    parts.push(item.invisible ? 'invisible' : 'visible', `location: ${item.visibility}`)
  } else {
    if (item.invisible) parts.push('invisible')
    if (item.visibility && item.visibility !== 'everyone') {
      parts.push(`location: ${item.visibility}`)
    }
  }
  if (item.where) parts.push(...whereNodes(item.where))
  for (const session of item.sessions ?? []) {
    const label = el('span', 'session', `${session.deviceType}: `)
    const where = session.where ? whereNodes(session.where) : []
    label.append(...(where.length > 0 ? where : [session.activity.kind]))
    parts.push(label)
  }
  parts.forEach((part, i) => {
    if (i > 0) cell.append(' · ')
    cell.append(part)
  })
  return cell
}

/**
 * Where, named as the top lists name it: the catalogue name with the id beside it, or the id.
 * @param {any} where
 */
function whereNodes(where) {
  /** @param {string | undefined} name @param {string} id @param {string} kind */
  const named = (name, id, kind) => {
    const span = el('span', 'named')
    if (name) span.append(el('span', 'name', name), el('span', 'id', id))
    else span.append(`${kind} ${id}`)
    return span
  }
  const nodes = []
  if (where.placeId) nodes.push(named(where.placeName, where.placeId, 'place'))
  else if (where.universeId) nodes.push(named(where.universeName, where.universeId, 'universe'))
  if (where.titleId) nodes.push(named(where.titleName, where.titleId, 'title'))
  if (nodes.length === 0 && where.location) nodes.push(el('span', 'name', where.location))
  return nodes
}

/** Where as text, for the admin lookup's raw activities. @param {any} where */
function describeWhere(where) {
  const parts = []
  if (where.location) parts.push(where.location)
  if (where.universeId) parts.push(`universe ${where.universeId}`)
  if (where.placeId) parts.push(`place ${where.placeId}`)
  if (where.titleId) parts.push(`title ${where.titleId}`)
  if (parts.length === 0 && where.kind) parts.push(where.kind)
  return parts.join(', ')
}

// ---------------------------------------------------------------- lookup

const ROBLOX_STATES = ['Offline', 'Online', 'InGame', 'InStudio', 'Invisible']

/** @param {string} id */
async function lookup(id) {
  const out = $('lookup-result')
  if (!/^[1-9][0-9]{0,18}$/.test(id)) {
    out.replaceChildren(el('p', 'error', 'A user id is a positive 64-bit integer.'))
    return
  }
  out.replaceChildren(el('p', 'muted', 'looking up…'))
  try {
    if (adminKey) {
      const response = await fetch(`/admin/v1/users/${id}/presence`, { headers: keyHeaders() })
      const body = parseLossless(await response.text())
      if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`)
      out.replaceChildren(...adminView(body))
    } else {
      // anonymous as it says: a cookie of a web client of the same origin would make the
      // lookup that user's (a friend's view), refused as a cookie write without CSRF token
      const response = await fetch('/v1/presence/users', {
        method: 'POST',
        credentials: 'omit',
        headers: { 'content-type': 'application/json' },
        body: `{"userIds":[${id}]}`,
      })
      const body = parseLossless(await response.text())
      if (!response.ok) throw new Error(body?.errors?.[0]?.message ?? `HTTP ${response.status}`)
      out.replaceChildren(...publicView(body.userPresences[0]))
    }
  } catch (error) {
    out.replaceChildren(el('p', 'error', /** @type {Error} */ (error).message))
  }
}

/** @param {Array<[string, unknown]>} pairs */
function definitions(pairs) {
  const dl = el('dl')
  for (const [name, value] of pairs) {
    if (value === undefined) continue
    dl.append(el('dt', '', name), el('dd', '', value === null ? '—' : String(value)))
  }
  return dl
}

/** @param {any} p a Roblox userPresence record */
function publicView(p) {
  return [
    el('p', 'muted', 'Public view (as an anonymous caller of POST /v1/presence/users):'),
    definitions([
      ['user', p.userId],
      ['state', ROBLOX_STATES[p.userPresenceType] ?? p.userPresenceType],
      ['location', p.lastLocation],
      ['place', p.placeId],
      ['universe', p.universeId],
      ['game server', p.gameId],
      ['last online', p.lastOnline],
    ]),
  ]
}

/** @param {any} p the admin presence view */
function adminView(p) {
  const nodes = [
    el('p', 'muted', 'Admin view (raw presence, no privacy applied):'),
    definitions([
      ['user', p.userId],
      ['state', p.stateName],
      ['invisible', p.settings?.invisible],
      ['visibility', p.settings?.visibility],
      ['last online', p.lastOnline],
      ['sessions', p.sessions.length],
    ]),
  ]
  if (p.sessions.length > 0) {
    const table = el('table', 'sessions')
    const head = el('tr')
    for (const name of ['key', 'device', 'activity', 'updated', 'expires'])
      head.append(el('th', '', name))
    table.append(head)
    for (const s of p.sessions) {
      const tr = el('tr')
      tr.append(
        el('td', '', s.key),
        el('td', '', `${s.deviceType} (${s.source})`),
        el(
          'td',
          `state-${s.activity.kind}`,
          `${s.activity.kind} ${describeWhere({ ...s.activity, kind: undefined })}`.trim(),
        ),
        el('td', '', clock.format(new Date(s.updatedAt))),
        el('td', '', clock.format(new Date(s.expiresAt))),
      )
      table.append(tr)
    }
    nodes.push(table)
  }
  return nodes
}

// ---------------------------------------------------------------- admin key

function renderKeyState() {
  const state = $('key-state')
  state.dataset.state = adminKey ? 'admin' : 'public'
  state.textContent = adminKey ? 'admin view' : 'public view'
  state.title = ''
  $('key-forget').hidden = !adminKey
}

/** @param {string | null} key */
function useKey(key) {
  adminKey = key
  if (key) sessionStorage.setItem(KEY_STORAGE, key)
  else sessionStorage.removeItem(KEY_STORAGE)
  renderKeyState()
  $('feed').replaceChildren()
  showFeedEmpty()
  setFeedStatus('connecting', 'connecting')
  void runFeed()
  void refreshStats()
}

/**
 * The server refused the admin key (401: unknown, expired or revoked): it is forgotten at once,
 * never sent again with each poll and reconnect. An unknown key counts as a guessed credential,
 * and a page repeating one would soon have the server refuse every credential from this address
 * (PRESENCED_AUTH_FAILURE_LIMIT), its users' too. The page goes on with the public view.
 * @param {string} message
 */
function keyRefused(message) {
  useKey(null)
  const state = $('key-state')
  state.dataset.state = 'refused'
  state.textContent = 'key refused'
  state.title = message
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const input = /** @type {HTMLInputElement} */ ($('admin-key'))
  const key = input.value.trim()
  input.value = ''
  useKey(key === '' ? null : key)
})
$('key-forget').addEventListener('click', () => useKey(null))
$('lookup-form').addEventListener('submit', (event) => {
  event.preventDefault()
  void lookup(/** @type {HTMLInputElement} */ ($('lookup-id')).value.trim())
})
window.addEventListener('resize', () => last && renderChart(last))

renderKeyState()
void refreshStats()
void runFeed()
// a tab left open for hours keeps its feed list bounded and its clock labels moving
setInterval(() => last && renderChart({ ...last, at: Date.now() }), 60_000)
