import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { USERS } from './roblox-helpers.js'

/*
 * The lean path takes a body parsed with its head at once, and waits for one that arrives later
 * (protocols/shared/lean-routes.ts readBody): however the bytes are cut into packets, and with
 * requests pipelined on one connection, the replies are the ones a single packet gets.
 */

/** Writes `parts` to one connection, `gapMs` apart; resolves with all it got once it closes. */
function raw(app: StartedApp, parts: string[], gapMs: number): Promise<string> {
  const { port } = new URL(app.url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1')
    let got = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (got += chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(got))
    socket.once('connect', async () => {
      for (const part of parts) {
        socket.write(part)
        await new Promise((r) => setTimeout(r, gapMs))
      }
    })
  })
}

function head(body: string, close: boolean): string {
  return (
    `POST ${USERS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`
  )
}

/** Status line and body of each reply in `text`, in order (headers but the status left out). */
function replies(text: string): Array<{ status: string; body: string }> {
  const out: Array<{ status: string; body: string }> = []
  let rest = text
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n')
    assert.ok(end > 0, `a reply head in ${JSON.stringify(rest.slice(0, 80))}`)
    const lines = rest.slice(0, end).split('\r\n')
    const length = Number(/^content-length: (\d+)$/im.exec(lines.join('\n'))?.[1])
    assert.ok(Number.isInteger(length), 'a content-length')
    out.push({ status: lines[0]!, body: rest.slice(end + 4, end + 4 + length) })
    rest = rest.slice(end + 4 + length)
  }
  return out
}

test('a body in later packets, split anywhere, gets the reply of a body sent with its head', async (t) => {
  const app = await startApp(t, { listen: true })
  const body = JSON.stringify({ userIds: [1, 2, '9007199254740993'] })
  const before = app.lean.served
  const [whole] = replies(await raw(app, [head(body, true) + body], 0))
  assert.equal(whole!.status, 'HTTP/1.1 200 OK')
  assert.equal(JSON.parse(whole!.body).userPresences.length, 3)
  for (const cut of [0, 1, 12, body.length - 1]) {
    const got = replies(
      await raw(app, [head(body, true) + body.slice(0, cut), body.slice(cut)], 30),
    )
    assert.deepEqual(got, [whole], `body cut at ${cut}`)
  }
  // byte by byte
  const bytes = [head(body, true), ...body.split('')]
  assert.deepEqual(replies(await raw(app, bytes, 2)), [whole])
  assert.equal(app.lean.served, before + 6, 'the lean path answered every one')
})

test('pipelined requests on one connection each get their own body', async (t) => {
  const app = await startApp(t, { listen: true })
  const bodies = [[1], [2, 3], ['9223372036854775807']].map((userIds) =>
    JSON.stringify({ userIds }),
  )
  const one = (body: string, i: number) => head(body, i === bodies.length - 1) + body
  const got = replies(await raw(app, [bodies.map(one).join('')], 0))
  // ids read as text: the last one is beyond 2^53
  const ids = got.map((r) => [...r.body.matchAll(/"userId":(\d+)/g)].map((m) => m[1]))
  assert.deepEqual(ids, [['1'], ['2', '3'], ['9223372036854775807']])
})

test('an empty body and a broken one are refused as Fastify refuses them', async (t) => {
  const app = await startApp(t, { listen: true })
  for (const body of ['', '{"userIds":[1,', '{"userIds":[1]}x']) {
    const lean = replies(await raw(app, [head(body, true) + body], 0))
    const viaFastify = replies(
      await raw(app, [head(body, true).replace(USERS, `${USERS}?via=fastify`) + body], 0),
    )
    assert.equal(lean.length, 1)
    assert.equal(lean[0]!.status, 'HTTP/1.1 400 Bad Request', `body ${JSON.stringify(body)}`)
    assert.deepEqual(lean, viaFastify, `body ${JSON.stringify(body)}`)
  }
})
