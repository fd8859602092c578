import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { test, type TestContext } from 'node:test'
import { createClient, type Subscription } from '@presenced/client'
import { fakeServer } from './fake-server.js'

/*
 * The bookkeeping of Subscription.add()/remove() against a scripted SSE server: what a real
 * presenced cannot be made to do on cue (end a stream at a chosen moment, answer a resumed
 * request with nothing).
 */

const token = 'tok'

function offline(userId: string) {
  return { userId, state: 'offline', lastOnline: null, locationHidden: false, sessions: [] }
}

function sse(frames: object[]): string {
  return frames.map((f, i) => `id: r.${i + 1}\ndata: ${JSON.stringify(f)}\n\n`).join('')
}

/** The first stream of subscribed(): the snapshot of 42, then the end. */
function firstStream(res: ServerResponse): void {
  res.end(sse([{ type: 'snapshot', seq: 1, resume: 'r', presences: [offline('42')] }]))
}

/** subscribe([42]) over SSE to `url`, ready, reconnecting after `delayMs`. */
async function subscribed(t: TestContext, url: string, delayMs: number): Promise<Subscription> {
  const client = createClient({ baseUrl: url, token })
  const sub = client.subscribe([42], {
    transport: 'sse',
    reconnect: { minDelayMs: delayMs, maxDelayMs: delayMs },
  })
  t.after(() => sub.close())
  await sub.ready
  return sub
}

/** `promise`'s outcome, or 'still pending' after `ms`. */
function settledWithin(promise: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([
    promise.then(
      () => 'resolved',
      (e: unknown) => e,
    ),
    new Promise((resolve) => setTimeout(() => resolve('still pending'), ms)),
  ])
}

test(
  'over SSE, an add() whose ids are removed before its request went out resolves: the resumed stream has nothing to answer it with',
  { timeout: 10_000 },
  async (t) => {
    const { url, requests } = await fakeServer(t, (_req, res, i) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      // the first stream: a snapshot, then it ends (a reconnect follows)
      if (i === 0) return firstStream(res)
      // a resumed stream with nothing new: no frame at all
    })
    const sub = await subscribed(t, url, 200)
    const added = await new Promise<{ added: Promise<void> }>((resolve) =>
      sub.once('reconnecting', () => {
        // between two requests: the add waits for the next one, and the remove takes it back
        const added = sub.add([7])
        sub.remove([7])
        resolve({ added })
      }),
    )
    // the next request goes out (resuming, without 7), and is answered with nothing
    while (requests.length < 2) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.equal(await settledWithin(added.added, 1000), 'resolved')
    assert.deepEqual([...sub.ids], ['42'])
    assert.deepEqual(JSON.parse(requests.at(-1)!.body).ids, ['42'])
  },
)

test(
  'over SSE, an add() from a reconnecting listener waits for the reconnect: one stream open, not two (the first never closed)',
  { timeout: 10_000 },
  async (t) => {
    let open = 0
    const { url, requests } = await fakeServer(t, (req, res, i) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      if (i === 0) return firstStream(res)
      open++
      res.on('close', () => open--)
      const ids = JSON.parse(req.body).ids as string[]
      res.write(sse([{ type: 'snapshot', seq: 2, presences: ids.map(offline) }]))
    })
    const sub = await subscribed(t, url, 100)
    const added = await new Promise<{ added: Promise<void> }>((resolve) =>
      sub.once('reconnecting', () => resolve({ added: sub.add([7]) })),
    )
    assert.equal(await settledWithin(added.added, 2000), 'resolved')
    // longer than the reconnect wait: a second request would be open by now
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(requests.length, 2, 'one request after the first')
    assert.equal(open, 1)
    sub.close()
  },
)
