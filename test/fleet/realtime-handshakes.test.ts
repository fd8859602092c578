import assert from 'node:assert/strict'
import { connect as tcpConnect } from 'node:net'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import type { StartedApp } from '../helpers/start-app.js'
import { connect, refused } from './realtime-limits-kit.js'

/*
 * A real-time request admitted (its place taken in the fleet's count, in Redis) that does not end
 * in an open stream gives its place back at once, on every node: before, the place stayed taken
 * until the admission lapsed (10 s) and the node's next renewal of its share (a third of the
 * lease) told Redis, so a user with one place could not connect anywhere for up to ~20 s after a
 * refused handshake.
 */

/** Writes `request` on a raw TCP socket and resolves with the status line of the answer. */
function rawRequest(node: { url: string }, request: string): Promise<string> {
  const { hostname, port } = new URL(node.url)
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(Number(port), hostname, () => socket.write(request))
    let answer = ''
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1')
      const line = answer.indexOf('\r\n')
      if (line !== -1) {
        resolve(answer.slice(0, line))
        socket.destroy()
      }
    })
    socket.on('error', reject)
    socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''))
  })
}

/** A socket that asks for an upgrade and is gone before it is answered. */
function abandonedUpgrade(node: { url: string }, token: string): Promise<void> {
  const { hostname, port } = new URL(node.url)
  return new Promise((resolve) => {
    const socket = tcpConnect(Number(port), hostname, () => {
      socket.end(
        'GET /api/v1/realtime HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
          `Authorization: Bearer ${token}\r\n\r\n`,
      )
      socket.destroy()
      resolve()
    })
  })
}

async function oneStreamPair(t: Parameters<typeof startNodePair>[0], label: string) {
  return startNodePair(t, label, { realtimeStreamsPerUser: 1 })
}

/** The user's one place is free on both nodes: a WebSocket opens on each in turn. */
async function placeIsFree(
  t: Parameters<typeof startNodePair>[0],
  nodes: StartedApp[],
  token: string,
) {
  for (const node of nodes) {
    const client = await connect(t, node, token)
    client.socket.close()
    await client.closed
    // the close gave the place back (counted in Redis before the next node is asked)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const cases: {
  name: string
  refuse: (node: StartedApp, token: string) => Promise<unknown>
}[] = [
  {
    name: 'a plain GET of the WebSocket route (426)',
    refuse: async (node, token) => {
      const res = await fetch(`${node.url}/api/v1/realtime`, {
        headers: { authorization: `Bearer ${token}` },
      })
      assert.equal(res.status, 426, await res.text())
    },
  },
  {
    name: 'an upgrade ws refuses (a malformed Sec-WebSocket-Key, 400)',
    refuse: async (node, token) => {
      const status = await rawRequest(
        node,
        'GET /api/v1/realtime HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n' +
          `Authorization: Bearer ${token}\r\n\r\n`,
      )
      assert.match(status, /^HTTP\/1\.1 400/)
    },
  },
  {
    name: 'an upgrade whose client left before it was answered',
    refuse: async (node, token) => {
      await abandonedUpgrade(node, token)
      // the request is admitted and handled after the client left
      await new Promise((resolve) => setTimeout(resolve, 300))
    },
  },
  {
    name: 'an SSE POST whose body is refused (415) after admission',
    refuse: async (node, token) => {
      const res = await fetch(`${node.url}/api/v1/realtime/sse`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
        body: 'ids=1',
      })
      assert.equal(res.status, 415, await res.text())
    },
  },
  {
    name: 'an SSE POST whose body fails its schema (400) after admission',
    refuse: async (node, token) => {
      const res = await fetch(`${node.url}/api/v1/realtime/sse`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{"ids":"nope"}',
      })
      assert.equal(res.status, 400, await res.text())
    },
  },
]

for (const { name, refuse } of cases) {
  test(`fleet: ${name} gives the user's connection place back at once`, async (t) => {
    const { a, b } = await oneStreamPair(t, 'rt-handshake')
    const token = await a.tokens.issue('9223372036854775790' as UserId)
    await refuse(a, token)
    // within the 10 s an admission lasts and well within the lease: the place is free everywhere
    await placeIsFree(t, [b, a], token)
    // and it is still one place: an open stream on A refuses a second one on B
    const held = await connect(t, a, token)
    assert.equal((await refused(b, token)).status, 429)
    held.socket.close()
  })
}
