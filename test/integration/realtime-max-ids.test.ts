import assert from 'node:assert/strict'
import { test } from 'node:test'
import WebSocket from 'ws'
import { startApp } from '../helpers/start-app.js'

/*
 * PRESENCED_REALTIME_MAX_IDS below 1000 (3 here): every way of asking for more ids than a stream
 * may watch is refused TOO_MANY_IDS in the native format, and every SSE answer, a refusal of any
 * kind included, tells the limit in x-presenced-max-ids.
 */

const POS = 'A'.repeat(22)

test('PRESENCED_REALTIME_MAX_IDS=3: SSE and WebSocket refuse a fourth id, and tell the limit', async (t) => {
  const server = await startApp(t, { listen: true, config: { realtimeMaxIds: 3 } })
  const token = await server.tokens.issue('500' as never)
  const auth = { authorization: `Bearer ${token}` }
  const sse = `${server.url}/api/v1/realtime/sse`
  const post = (body: string) =>
    fetch(sse, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body })
  const refusals: Array<[label: string, response: Promise<Response>, code: string]> = [
    ['GET, 4 ids', fetch(`${sse}?ids=1,2,3,4`, { headers: auth }), 'TOO_MANY_IDS'],
    [
      'GET, ids repeated 4 times',
      fetch(`${sse}?ids=1&ids=2&ids=3&ids=4`, { headers: auth }),
      'TOO_MANY_IDS',
    ],
    ['POST, 4 ids', post(JSON.stringify({ ids: ['1', '2', '3', '4'] })), 'TOO_MANY_IDS'],
    [
      'POST, 4 ids and positions',
      post(JSON.stringify({ ids: ['1', '2', '3', '4'], positions: true })),
      'TOO_MANY_IDS',
    ],
    [
      'POST, 4 positions',
      post(JSON.stringify({ ids: ['1'], positions: { 1: POS, 2: POS, 3: POS, 4: POS } })),
      'TOO_MANY_IDS',
    ],
    // refused by the body's schema or parser, before the handler: the limit is told all the same
    [
      'POST, a malformed position',
      post(JSON.stringify({ ids: ['1'], positions: { 1: 'x' } })),
      'INVALID_REQUEST',
    ],
    ['POST, not JSON', post('{"ids":'), 'INVALID_JSON'],
    ['GET, no ids', fetch(sse, { headers: auth }), 'IDS_INVALID'],
  ]
  for (const [label, response, code] of refusals) {
    const res = await response
    const body = await res.text()
    assert.equal(res.status, 400, `${label}: ${body}`)
    assert.match(String(res.headers.get('content-type')), /^application\/json/, label)
    assert.equal(JSON.parse(body).error.code, code, `${label}: ${body}`)
    assert.equal(res.headers.get('x-presenced-max-ids'), '3', `${label}: the limit told`)
    // and in the body, where a refusal for the count is: what the WebSocket frame says too
    const told = code === 'TOO_MANY_IDS' ? 3 : undefined
    assert.equal(JSON.parse(body).error.maxIds, told, `${label}: maxIds in the body`)
    // an SSE request's refusal speaks of what it sent: no WebSocket frame here
    assert.doesNotMatch(JSON.parse(body).error.message, /frame/, label)
  }
  const unauthenticated = await fetch(`${sse}?ids=1`)
  assert.equal(unauthenticated.status, 401)
  assert.equal(unauthenticated.headers.get('x-presenced-max-ids'), '3', '401: the limit told')
  const three = await fetch(`${sse}?ids=1,2,3`, { headers: auth })
  assert.equal(three.status, 200)
  assert.equal(three.headers.get('x-presenced-max-ids'), '3')
  await three.body?.cancel()

  const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/realtime`, {
    headers: auth,
  })
  t.after(() => socket.terminate())
  const upgraded = new Promise<unknown>((resolve) =>
    socket.once('upgrade', (r) => resolve(r.headers['x-presenced-max-ids'])),
  )
  const frames: Array<Record<string, unknown>> = []
  socket.on('message', (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>))
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject))
  assert.equal(await upgraded, '3')
  const answer = async (frame: unknown) => {
    const seen = frames.length
    socket.send(JSON.stringify(frame))
    for (let i = 0; i < 200 && frames.length === seen; i++)
      await new Promise((r) => setTimeout(r, 10))
    return frames[seen]
  }
  // a browser's WebSocket cannot read the upgrade's header: every refusal says the limit in band
  const refused = (for_: string) => ({ type: 'error', code: 'TOO_MANY_IDS', for: for_, maxIds: 3 })
  const pick = (f: Record<string, unknown> | undefined) =>
    f && { type: f.type, code: f.code, for: f.for, maxIds: f.maxIds }
  assert.deepEqual(
    pick(await answer({ type: 'subscribe', ids: ['1', '2', '3', '4'] })),
    refused('subscribe'),
  )
  assert.equal((await answer({ type: 'subscribe', ids: ['1', '2'] }))?.type, 'snapshot')
  // an add past the stream's 3: refused whole, nothing of it watched
  assert.deepEqual(pick(await answer({ type: 'subscribe', ids: ['3', '4'] })), refused('subscribe'))
  assert.equal((await answer({ type: 'subscribe', ids: ['3'] }))?.type, 'snapshot')
  assert.deepEqual(pick(await answer({ type: 'subscribe', ids: ['5'] })), refused('subscribe'))
  assert.deepEqual(
    pick(
      await answer({
        type: 'resume',
        resume: 'x',
        since: 1,
        positions: { 1: POS, 2: POS, 3: POS, 4: POS },
      }),
    ),
    refused('resume'),
  )
  // a resume from positions alone, past what the stream may watch with them: the stream's bound
  assert.deepEqual(
    pick(await answer({ type: 'resume', positions: { 4: POS, 5: POS, 6: POS, 7: POS } })),
    refused('resume'),
  )
})
