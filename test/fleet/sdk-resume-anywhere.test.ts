import assert from 'node:assert/strict'
import { createServer, connect, type Socket } from 'node:net'
import { test } from 'node:test'
import { createClient, type PresenceEvent } from '@presenced/client'
import WebSocket from 'ws'
import type { UserId } from '../../src/core/user-id.js'
import { startNodePair } from '../helpers/start-node-pair.js'

const PLAYERS = ['9007199254740993', '9007199254740995']
const WATCHER = '500'

/** A TCP load balancer with one backend at a time: what a client behind one sees of a fleet. */
async function balancer(backend: () => string) {
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const { hostname, port } = new URL(backend())
    const upstream = connect(Number(port), hostname)
    sockets.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

for (const transport of ['websocket', 'sse'] as const) {
  test(`SDK (${transport}): a subscription whose node goes away resumes on another node from its positions, transparently`, async (t) => {
    const { a, b } = await startNodePair(t, 'sdk-resume')
    let target = a.url
    const lb = await balancer(() => target)
    t.after(() => lb.close())

    const watcher = createClient({
      baseUrl: lb.url,
      token: await a.tokens.issue(WATCHER as UserId),
      WebSocket,
    })
    const sub = watcher.subscribe(PLAYERS, { transport, reconnect: { minDelayMs: 50 } })
    t.after(() => sub.close())
    const seen: PresenceEvent[] = []
    sub.on('event', (event) => seen.push(event))
    await sub.ready
    const players = await Promise.all(
      PLAYERS.map(async (id) =>
        createClient({ baseUrl: b.url, token: await b.tokens.issue(id as UserId) }),
      ),
    )
    const locationsOf = (id: string) =>
      seen.flatMap((e) =>
        e.type !== 'snapshot' && e.presence.userId === id
          ? [e.raw.sessions[0]?.activity.location ?? '']
          : [],
      )
    const until = async (check: () => boolean, what: string) => {
      const deadline = Date.now() + 10_000
      while (!check()) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}: ${JSON.stringify(seen)}`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }

    for (const p of players) await p.registerAppPresence({ placeId: 1818, location: 'one' })
    await until(() => PLAYERS.every((id) => locationsOf(id).length === 1), 'the first changes on A')

    // node A goes away; the balancer sends the reconnect to B, which never held the stream
    target = b.url
    const reopened = new Promise<void>((resolve) => sub.once('open', () => resolve()))
    await a.app.close()
    for (const step of ['two', 'three']) {
      for (const p of players) await p.registerAppPresence({ placeId: 1818, location: step })
    }
    await reopened
    await players[0]!.registerAppPresence({ placeId: 1818, location: 'four' })
    await until(() => locationsOf(PLAYERS[0]!).at(-1) === 'four', 'the live change on B')

    assert.deepEqual(locationsOf(PLAYERS[0]!), ['one', 'two', 'three', 'four'])
    assert.deepEqual(locationsOf(PLAYERS[1]!), ['one', 'two', 'three'])
    // no fresh snapshot: the one snapshot is the first, and sequence numbers went on without gap
    assert.deepEqual(
      seen.filter((e) => e.type === 'snapshot').map((e) => e.type === 'snapshot' && e.reset),
      [false],
    )
    const after = seen.slice(3).map((e) => e.seq)
    assert.deepEqual(
      after,
      after.map((_, i) => after[0]! + i),
    )
  })
}
