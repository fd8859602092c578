import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { test, type TestContext } from 'node:test'
import { createClient, type PresenceEvent, type WebSocketLike } from '@presenced/client'
import WebSocket, { WebSocketServer } from 'ws'

// A reset replaces a stream's view when the snapshot taken for it arrives, in one step: a user
// in that snapshot never leaves `presences` meanwhile. The case that broke it: a stream moved to
// a new one by a server restarted with a lower limit, some of its users without a position (no
// `pos` was had for them). The new stream resumes the others from their positions and subscribes
// these; the server answers the resume `reset` (history lost) and the SDK subscribes every id
// again; the snapshot of the position-less users, answering the subscribe sent before the reset,
// was taken for the reset's and replaced the whole view with its users alone.

const presence = (userId: string, state = 'offline') => ({
  userId,
  state,
  lastOnline: null,
  sessions: [],
})

/**
 * A scripted `ws` server: its first connection takes 4 ids (pos for 1, 2 and 3 only) and is cut;
 * later ones take 2 (x-presenced-max-ids), and answer a resume by token `recovered`, a resume
 * from positions alone `reset`, a subscribe by a snapshot of its ids (user 3 online from then).
 */
async function restartingServer(t: TestContext) {
  const frames: string[] = []
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise((resolve) => server.once('listening', resolve))
  let connections = 0
  server.on('headers', (headers) => {
    headers.push(`x-presenced-max-ids: ${connections === 0 ? 4 : 2}`)
  })
  server.on('connection', (socket) => {
    const index = connections++
    let seq = 0
    socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>
      const ids = Array.isArray(frame.ids) ? (frame.ids as string[]) : []
      frames.push(`${index} ${String(frame.type)} ${ids.join(',')}`.trim())
      if (frame.type === 'subscribe') {
        const presences = ids.map((id) =>
          presence(id, index > 0 && id === '3' ? 'online' : 'offline'),
        )
        const pos = ids.map((id) =>
          index === 0 && id === '4' ? null : `pos-${id}`.padEnd(32, 'x'),
        )
        socket.send(
          JSON.stringify({ type: 'snapshot', seq: ++seq, resume: `s${index}`, presences, pos }),
        )
        if (index === 0) setTimeout(() => socket.terminate(), 20)
      } else if (frame.type === 'resume' && typeof frame.resume === 'string') {
        socket.send(JSON.stringify({ type: 'recovered', seq: ++seq, resume: `s${index}` }))
      } else if (frame.type === 'resume') {
        socket.send(JSON.stringify({ type: 'reset', reason: 'too_old' }))
      }
    })
  })
  t.after(() => {
    // the subscription's sockets too (its own close runs after this hook)
    for (const client of server.clients) client.terminate()
    return new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, frames }
}

test(
  'a moved stream reset while some of its users had no position: presences keeps every user until the reset snapshot replaces them',
  { timeout: 10_000 },
  async (t) => {
    const { url, frames } = await restartingServer(t)
    const client = createClient({
      baseUrl: url,
      token: 't',
      WebSocket: WebSocket as unknown as WebSocketLike,
      random: () => 0,
    })
    const sub = client.subscribe(['1', '2', '3', '4'], {
      reconnect: { minDelayMs: 20, maxDelayMs: 200 },
    })
    t.after(() => sub.close())
    await sub.ready
    const seen: string[] = []
    const missing: string[] = []
    const told = new Promise<void>((resolve) => {
      sub.on('event', (e: PresenceEvent) => {
        const ids = e.type === 'snapshot' ? e.presences.map((p) => p.userId) : [e.presence.userId]
        seen.push(`${e.type} ${ids.join(',')}${e.type === 'snapshot' && e.reset ? ' reset' : ''}`)
        for (const id of ['1', '2', '3', '4']) {
          if (!sub.presences.has(id)) missing.push(`${id} after ${seen.at(-1)}`)
        }
        if (e.type === 'snapshot' && e.reset) resolve()
      })
    })
    await told
    assert.deepEqual(missing, [], 'no watched user left presences')
    // the position-less user's own snapshot replaces nothing; the reset's replaces the stream's
    assert.deepEqual(seen, ['snapshot 4', 'snapshot 3,4 reset'])
    assert.equal(sub.presences.get('3')?.type, 1, "the reset snapshot's state")
    assert.deepEqual(
      frames.filter((f) => !f.startsWith('0 ')),
      ['1 resume', '1 unsubscribe 3,4', '2 resume', '2 subscribe 4', '2 subscribe 3,4'],
    )
  },
)
