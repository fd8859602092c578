import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import WebSocket from 'ws'
import { createStores } from '../../src/app/create-stores.js'
import type { UserId } from '../../src/core/user-id.js'
import type { Holdings, StreamHoldings } from '../../src/realtime/stream-holdings.js'
import { startApp } from '../helpers/start-app.js'

/*
 * An SSE request checks the fleet's count of the user's watches (a Redis round trip) before its
 * stream opens. A client that leaves during that wait has closed its response before the stream
 * listens for the close: the stream must not open then, or it would live on with nobody to end
 * it, holding one of the user's places for good. The fleet's count is a StreamHoldings whose
 * read answers after 300 ms, as a slow Redis would; everything else is the embedded stores.
 * The WebSocket case (the client gone while its place is taken) held already; it is kept as a
 * guard.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * What `attempt` gives once it gives more than a refusal (a string saying why), tried every
 * 100 ms for up to 5 s: a place given back late under load passes, one never given back fails.
 */
async function soon<T>(attempt: () => Promise<T | string>): Promise<T> {
  const deadline = Date.now() + 5000
  for (;;) {
    const result = await attempt()
    if (typeof result !== 'string') return result
    assert.ok(Date.now() < deadline, `still refused after 5 s: ${result}`)
    await sleep(100)
  }
}

/** presenced with a fleet count whose `set` (admitting) or `others` (checking) waits 300 ms. */
async function slowFleetCount(t: TestContext, slow: 'set' | 'others') {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-sse-gone-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const real = await createStores({ dataDir })
  const nothing: Holdings = { streams: 0, watches: 0 }
  const holdings: StreamHoldings = {
    leaseMs: 30_000,
    set: async () => {
      if (slow === 'set') await sleep(300)
      return { ok: true }
    },
    others: async () => {
      if (slow === 'others') await sleep(300)
      return nothing
    },
  }
  const app = await startApp(t, {
    dataDir,
    listen: true,
    stores: { ...real, holdings },
    config: { realtimeStreamsPerUser: 1 },
  })
  return { app, token: await app.tokens.issue('8400' as UserId) }
}

test('an SSE client gone while its request waits on the fleet count leaves no stream behind', async (t) => {
  const { app, token } = await slowFleetCount(t, 'others')
  const url = `${app.url}/api/v1/realtime/sse?ids=1,2&access_token=${token}`

  const gone = new AbortController()
  const leaving = fetch(url, { signal: gone.signal }).catch((error: unknown) => error)
  await sleep(100)
  gone.abort()
  assert.ok((await leaving) instanceof Error, 'the first request was aborted before its answer')

  // the user's one place is free: a stream opens and sends its snapshot (a stream left behind
  // would hold it for good; the wait covers a loaded machine, below the 10 s an unused
  // admission takes to lapse)
  const again = await soon(async () => {
    const response = await fetch(url)
    if (response.status === 200) return response
    await response.body?.cancel()
    return `${response.status}`
  })
  const reader = again.body!.getReader()
  t.after(() => reader.cancel().catch(() => {}))
  let text = ''
  const deadline = Date.now() + 5000
  while (!text.includes('"type"')) {
    assert.ok(Date.now() < deadline, `no frame within 5 s: ${text}`)
    const chunk = await reader.read()
    if (chunk.done) break
    text += new TextDecoder().decode(chunk.value)
  }
  assert.match(text, /"type":"snapshot"/, text)
})

test('a WebSocket client gone while its place is being taken gives the place back', async (t) => {
  const { app, token } = await slowFleetCount(t, 'set')
  const url = `${app.url.replace('http', 'ws')}/api/v1/realtime`
  const headers = { authorization: `Bearer ${token}` }
  const gone = new WebSocket(url, { headers })
  gone.on('error', () => {})
  await sleep(100)
  gone.terminate()

  // the user's one place is free (not 10 s later, when an unused admission lapses)
  const again = await soon(async () => {
    const socket = new WebSocket(url, { headers })
    const opened = await new Promise<string>((resolve) => {
      socket.once('open', () => resolve('open'))
      socket.once('unexpected-response', (_request, response) => resolve(`${response.statusCode}`))
      socket.once('error', (error) => resolve(error.message))
    })
    if (opened === 'open') return socket
    socket.terminate()
    return opened
  })
  t.after(() => again.terminate())
})
