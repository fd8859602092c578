import assert from 'node:assert/strict'
import { request as httpRequest, Agent } from 'node:http'
import { connect, type Socket } from 'node:net'
import { test, type TestContext } from 'node:test'
import { startApp } from '../helpers/start-app.js'

const HEADERS_TIMEOUT = 500
const REQUEST_TIMEOUT = 1000
/**
 * Node checks its connections' timeouts once a second: the bound is the timeout plus that, plus
 * what a loaded machine adds (seen: a cut at 3080 ms for the 1000 ms request timeout at load
 * average 30). It tells a cut from none: Node's own timeouts are a minute and more.
 */
const SLACK = 4000

interface Attacker {
  socket: Socket
  /** Resolves, when the server closes the connection, with how long it lived and what it got. */
  closed: Promise<{ ms: number; reply: string }>
}

/** Opens a socket that writes `chunks` one every `everyMs` (bounded), and never finishes. */
function attacker(port: number, chunks: string[], everyMs: number): Promise<Attacker> {
  return new Promise((ready, fail) => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString()))
    socket.on('error', () => {})
    const closed = new Promise<{ ms: number; reply: string }>((done) =>
      socket.on('close', () => done({ ms: Date.now() - started, reply })),
    )
    let i = 0
    const timer = setInterval(() => {
      if (socket.destroyed || i >= chunks.length) return clearInterval(timer)
      socket.write(chunks[i++]!)
    }, everyMs)
    socket.once('connect', () => ready({ socket, closed }))
    socket.once('error', fail)
  })
}

/** Bounded loop of ordinary requests on a keep-alive agent; each latency in ms. */
async function normalClient(url: string, count: number, body = '{"userIds":[1,2,3]}') {
  const agent = new Agent({ keepAlive: true, maxSockets: 4 })
  const latencies: number[] = []
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now()
      const status = await new Promise<number>((done, fail) => {
        const req = httpRequest(
          `${url}/v1/presence/users`,
          { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume()
            res.on('end', () => done(res.statusCode ?? 0))
          },
        )
        req.on('error', fail)
        req.end(body)
      })
      assert.equal(status, 200)
      latencies.push(performance.now() - started)
      await new Promise((r) => setTimeout(r, 20))
    }
  } finally {
    agent.destroy()
  }
  return latencies.sort((a, b) => a - b)
}

const median = (sorted: number[]) => sorted[Math.floor(sorted.length / 2)]!

async function server(t: TestContext) {
  const started = await startApp(t, {
    listen: true,
    config: { headersTimeoutMs: HEADERS_TIMEOUT, requestTimeoutMs: REQUEST_TIMEOUT },
  })
  return { ...started, port: Number(new URL(started.url).port) }
}

test('slowloris headers: cut with 408 after the headers timeout; others served meanwhile', async (t) => {
  const { url, port } = await server(t)
  const baseline = await normalClient(url, 20)
  const head = 'POST /v1/presence/users HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(400)
  const attackers = await Promise.all(
    Array.from({ length: 100 }, () => attacker(port, [...head], 25)),
  )
  t.after(() => attackers.forEach((a) => a.socket.destroy()))
  const during = await normalClient(url, 40)
  const closes = await Promise.all(attackers.map((a) => a.closed))
  for (const { ms, reply } of closes) {
    assert.match(reply, /^HTTP\/1\.1 408 /)
    assert.ok(ms >= HEADERS_TIMEOUT - 50 && ms < HEADERS_TIMEOUT + SLACK, `lived ${ms} ms`)
  }
  t.diagnostic(
    `median latency ${median(baseline).toFixed(1)} ms before, ${median(during).toFixed(1)} ms during 100 slowloris sockets`,
  )
  assert.ok(median(during) < 250, `median during the attack ${median(during)} ms`)
})

test('slow bodies: cut with 408 after the request timeout, nothing of them processed', async (t) => {
  const { url, port, service, tokens } = await server(t)
  const body = JSON.stringify({ location: 'Website' })
  const token = await tokens.issue('77' as never)
  const head =
    'POST /v1/presence/register-app-presence HTTP/1.1\r\nHost: x\r\n' +
    `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${body.length + 1000}\r\n\r\n`
  const attackers = await Promise.all(
    Array.from({ length: 50 }, () => attacker(port, [head, ...body, ...' '.repeat(1000)], 25)),
  )
  t.after(() => attackers.forEach((a) => a.socket.destroy()))
  const during = await normalClient(url, 30)
  const closes = await Promise.all(attackers.map((a) => a.closed))
  for (const { ms, reply } of closes) {
    assert.match(reply, /^HTTP\/1\.1 408 /)
    assert.ok(ms >= REQUEST_TIMEOUT - 50 && ms < REQUEST_TIMEOUT + SLACK, `lived ${ms} ms`)
  }
  assert.ok(median(during) < 250, `median during the attack ${median(during)} ms`)
  const [presence] = await service.rawPresences(['77' as never])
  assert.deepEqual(presence!.sessions, [], 'no half-received register was applied')
})

test('idle connections that never send a byte are closed after the headers timeout', async (t) => {
  const { port } = await server(t)
  const idle = await Promise.all(Array.from({ length: 50 }, () => attacker(port, [], 1000)))
  t.after(() => idle.forEach((a) => a.socket.destroy()))
  for (const { ms } of await Promise.all(idle.map((a) => a.closed))) {
    assert.ok(ms < HEADERS_TIMEOUT + SLACK, `lived ${ms} ms`)
  }
})

test('a flood of 500 connections: the server stays up, answers each, keeps serving', async (t) => {
  const { url, port } = await server(t)
  const body = JSON.stringify({ userIds: [1, 2, 3] })
  const request =
    'POST /v1/presence/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
  const flood = await Promise.all(Array.from({ length: 500 }, () => attacker(port, [request], 1)))
  t.after(() => flood.forEach((a) => a.socket.destroy()))
  const during = await normalClient(url, 20)
  const closes = await Promise.all(flood.map((a) => a.closed))
  assert.equal(closes.filter((c) => /^HTTP\/1\.1 200 /.test(c.reply)).length, 500)
  assert.ok(median(during) < 500, `median during the flood ${median(during)} ms`)
  // and after it, as before
  assert.equal((await normalClient(url, 5)).length, 5)
  const health = await fetch(`${url}/healthz`)
  assert.equal(health.status, 200)
})
