import assert from 'node:assert/strict'
import { once } from 'node:events'
import { request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { test, type TestContext } from 'node:test'
import { pino } from 'pino'
import {
  contentLength,
  fixedReply,
  LeanRoutes,
  replyHeaders,
  type LeanReply,
  type LeanRoute,
} from './lean-routes.js'

/** A server whose one lean route answers `body` and notes what it is given back. */
async function serving(body: Buffer) {
  const reclaimed: Buffer[] = []
  const routes = new LeanRoutes({ bodyLimit: 1024 })
  routes.add({
    method: 'POST',
    path: '/read',
    route: '/read',
    internalError: { status: 500, headers: {}, body: '' },
    async handle(_request, _ip, readBody): Promise<LeanReply> {
      await readBody()
      return {
        status: 200,
        headers: { 'content-type': 'application/octet-stream' },
        body,
        reclaim: (bytes) => reclaimed.push(bytes),
      }
    },
  })
  const { server, port } = await listening(routes)
  return { server, port, reclaimed }
}

/** `routes`' server listening on a free port of 127.0.0.1 (404 for any other path). */
async function listening(routes: LeanRoutes): Promise<{ server: Server; port: number }> {
  const server: Server = routes.serverFactory((_request, response) => {
    response.statusCode = 404
    response.end()
  }, {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as AddressInfo).port }
}

/** POSTs `{}` and resolves with the response, its body left unread. */
function post(port: number) {
  return new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/read',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      },
      resolve,
    )
    req.on('error', reject)
    req.end('{}')
  })
}

async function bodyOf(response: import('node:http').IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of response) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

test('a reply the socket took whole is given back to its writer (reclaim)', async (t) => {
  const body = Buffer.from('{"userPresences":[]}')
  const { server, port, reclaimed } = await serving(body)
  t.after(() => server.close())
  const response = await post(port)
  assert.deepEqual(await bodyOf(response), body)
  assert.equal(reclaimed.length, 1)
  assert.equal(reclaimed[0], body)
})

test('a reply the socket still holds part of is not given back', async (t) => {
  // far more than a loopback socket's send buffer: the write cannot finish at once
  const body = Buffer.alloc(64 << 20, 0x61)
  const { server, port, reclaimed } = await serving(body)
  t.after(() => server.close())
  const response = await post(port)
  // the client has not read anything yet: the server's write is still under way
  assert.equal(reclaimed.length, 0)
  const received = await bodyOf(response)
  assert.equal(received.length, body.length)
  assert.ok(received.equals(body))
  assert.equal(reclaimed.length, 0)
})

/**
 * A server with Fastify's connectionTimeout of `idleMs`: lean routes at /lean (answering `{}`)
 * and /big (64 MiB), everything else to a fallback that never answers (a hung Fastify route).
 * Each lean request's socket timeout as its handler starts goes into `seen`.
 */
async function idleServer(idleMs: number, seen: Array<number | undefined>) {
  const routes = new LeanRoutes({ bodyLimit: 1024 })
  for (const [path, body] of [
    ['/lean', Buffer.from('{}')],
    ['/big', Buffer.alloc(64 << 20, 0x61)],
  ] as const) {
    routes.add({
      method: 'POST',
      path,
      route: path,
      internalError: { status: 500, headers: {}, body: '' },
      async handle(request, _ip, readBody): Promise<LeanReply> {
        seen.push(request.socket.timeout)
        await readBody()
        return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body }
      },
    })
  }
  const server: Server = routes.serverFactory(() => {}, { connectionTimeout: idleMs })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { server, port }
}

/** Opens a raw connection; resolves when it is open, with when (ms) the server closes it. */
function rawConnection(port: number) {
  return new Promise<{ socket: Socket; closed: Promise<number>; text: () => string }>(
    (resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      let text = ''
      socket.setEncoding('latin1')
      socket.on('data', (chunk: string) => (text += chunk))
      socket.on('error', () => {})
      const closed = new Promise<number>((done) => socket.on('close', () => done(Date.now())))
      socket.once('connect', () => resolve({ socket, closed, text: () => text }))
      socket.once('error', reject)
    },
  )
}

const leanRequest = (path: string) =>
  `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`

/** Resolves once `text()` holds `count` replies' status lines. */
async function replies(text: () => string, count: number) {
  while ((text().match(/HTTP\/1\.1 200/g) ?? []).length < count) {
    await new Promise((r) => setTimeout(r, 5))
  }
}

test('a lean request on a kept-alive connection arms no idle timer (issue 19: ~2.5k instructions per heartbeat)', async (t) => {
  const seen: Array<number | undefined> = []
  const { server, port } = await idleServer(60_000, seen)
  t.after(() => server.close())
  const { socket, text } = await rawConnection(port)
  t.after(() => socket.destroy())
  socket.write(leanRequest('/lean'))
  await replies(text, 1)
  socket.write(leanRequest('/lean'))
  await replies(text, 2)
  // the first request finds the timer the connection opened with; the next one none
  assert.deepEqual(seen, [60_000, 0])
})

test('connectionTimeout still closes an idle connection, a hung Fastify request and a lean reply nobody reads', async (t) => {
  const IDLE = 300
  const SLACK = 3000
  const seen: Array<number | undefined> = []
  const { server, port } = await idleServer(IDLE, seen)
  t.after(() => server.close())
  const serverSockets: Socket[] = []
  server.on('connection', (socket: Socket) => serverSockets.push(socket))
  // kept-alive connections (one request answered each), then: one whose next request Fastify
  // never answers, one whose next lean reply (64 MiB) is never read, one that sends nothing
  const hung = await rawConnection(port)
  const unread = await rawConnection(port)
  t.after(() => hung.socket.destroy())
  t.after(() => unread.socket.destroy())
  hung.socket.write(leanRequest('/lean'))
  unread.socket.write(leanRequest('/lean'))
  await Promise.all([replies(hung.text, 1), replies(unread.text, 1)])
  const quiet = await rawConnection(port)
  t.after(() => quiet.socket.destroy())
  const started = Date.now()
  hung.socket.write(leanRequest('/hangs'))
  unread.socket.pause()
  unread.socket.write(leanRequest('/big'))
  // the server's side of each (a client that reads nothing sees no end of its socket), or
  // Infinity when it is still open well past the bound
  const closedOnServer = (client: Socket) =>
    new Promise<number>((done) => {
      const own = serverSockets.find((s) => s.remotePort === client.localPort)!
      if (own.destroyed) return done(Date.now())
      own.on('close', () => done(Date.now()))
      setTimeout(() => done(Infinity), 2 * (IDLE + SLACK)).unref()
    })
  const closes = await Promise.all(
    [quiet, hung, unread].map(({ socket }) => closedOnServer(socket)),
  )
  const names = ['a quiet connection', 'a hung Fastify request', 'an unread lean reply']
  closes.forEach((at, i) => {
    assert.ok(at - started < IDLE + SLACK, `${names[i]} cut after ${at - started} ms`)
  })
})

/** A POST /read of `body` as a client sends it (raw HTTP/1.1). */
const rawRead = (body: string) =>
  `POST /read HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
  `Content-Length: ${body.length}\r\n\r\n${body}`

/** What `socket` receives (as latin1 text), once `done` holds of it. */
function readUntil(socket: Socket, done: (text: string) => boolean): Promise<string> {
  let text = ''
  socket.setEncoding('latin1')
  return new Promise((resolve) => {
    socket.on('data', (chunk: string) => {
      text += chunk
      if (done(text)) resolve(text)
    })
  })
}

/**
 * POST /read answered by `handle`, on a server of its own; resolves with a function that opens a
 * connection to it (closed, as the server, when the test ends).
 */
async function readServer(
  t: TestContext,
  handle: LeanRoute['handle'],
  observer?: (step: string) => void,
): Promise<() => Promise<Socket>> {
  const routes = new LeanRoutes({ bodyLimit: 1024 })
  if (observer) {
    routes.observe(
      { onResponse: () => observer('written') },
      { level: 'warn', info() {}, warn() {}, error() {} },
    )
  }
  routes.add({
    method: 'POST',
    path: '/read',
    route: '/read',
    internalError: { status: 500, headers: {}, body: '' },
    handle,
  })
  const { server, port } = await listening(routes)
  t.after(() => server.close())
  return async () => {
    const socket = connect(port, '127.0.0.1')
    t.after(() => socket.destroy())
    await once(socket, 'connect')
    return socket
  }
}

test('a route that throws at once or rejects is answered its internalError, and the requests after it are served', async (t) => {
  const routes = new LeanRoutes({ bodyLimit: 1024 })
  const logged: unknown[] = []
  routes.observe(
    { onResponse: () => {} },
    {
      level: 'warn',
      info: () => {},
      warn: () => {},
      error: (object) => logged.push(object),
    },
  )
  routes.add({
    method: 'POST',
    path: '/read',
    route: '/read',
    internalError: { status: 500, headers: { 'content-type': 'text/plain' }, body: 'bug' },
    handle(_request, _ip, readBody): LeanReply | Promise<LeanReply> {
      const text = readBody()
      if (typeof text !== 'string') throw new Error('the body came with its head')
      if (text === '"throw"') throw new Error('thrown at once')
      if (text === '"reject"') return Promise.reject(new Error('rejected'))
      return { status: 200, headers: { 'content-type': 'text/plain' }, body: text }
    },
  })
  const { server, port } = await listening(routes)
  t.after(() => server.close())
  // three requests pipelined in one write: each is answered, in order
  const socket = connect(port, '127.0.0.1')
  t.after(() => socket.destroy())
  socket.write(rawRead('"throw"') + rawRead('"reject"') + rawRead('"ok"'))
  const text = await readUntil(socket, (text) => text.includes('"ok"'))
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1])
  assert.deepEqual(statuses, ['500', '500', '200'])
  assert.match(text, /\r\n\r\nbug[^]*\r\n\r\nbug[^]*\r\n\r\n"ok"$/)
  assert.equal(logged.length, 2)
})

test("the replies of one turn's requests are written together, after them all, in order", async (t) => {
  const steps: string[] = []
  const connection = await readServer(
    t,
    (_request, _ip, readBody): LeanReply => {
      const text = readBody() as string
      steps.push(`handled ${text}`)
      return { status: 200, headers: { 'content-type': 'text/plain' }, body: text }
    },
    (step) => steps.push(step),
  )
  const socket = await connection()
  // three requests in one read: one turn
  socket.write(rawRead('1') + rawRead('2') + rawRead('3'))
  const text = await readUntil(socket, (text) => text.endsWith('\r\n\r\n3'))
  // each reply written as it was ready woke the client once per reply (issue 19)
  assert.deepEqual(steps, ['handled 1', 'handled 2', 'handled 3', 'written', 'written', 'written'])
  assert.match(text, /\r\n\r\n1HTTP[^]*\r\n\r\n2HTTP[^]*\r\n\r\n3$/)
})

test('a reply whose write throws (a bug) leaves the replies queued after it written', async (t) => {
  const connection = await readServer(t, (_request, _ip, readBody): LeanReply => {
    const text = readBody() as string
    // Node's writeHead throws on a status outside 100-999
    return {
      status: text === '"bad"' ? 99 : 200,
      headers: { 'content-type': 'text/plain' },
      body: text,
    }
  })
  const rejections: unknown[] = []
  const onRejection = (reason: unknown) => rejections.push(reason)
  // the bug's rejection is this test's to see, not the test runner's (which fails on it)
  const runners = process.listeners('unhandledRejection')
  process.removeAllListeners('unhandledRejection')
  process.on('unhandledRejection', onRejection)
  t.after(() => {
    process.off('unhandledRejection', onRejection)
    for (const listener of runners) process.on('unhandledRejection', listener)
  })
  const [bad, good] = await Promise.all([connection(), connection()])
  // both written before the server's next read: their replies are queued in one turn, bad first
  bad.write(rawRead('"bad"'))
  good.write(rawRead('"ok"'))
  const text = await readUntil(good, (text) => text.endsWith('"ok"'))
  assert.match(text, /^HTTP\/1\.1 200 OK/)
  while (rejections.length === 0) await new Promise((r) => setTimeout(r, 5))
  assert.match(String(rejections[0]), /status code/i)
})

/** The raw bytes of `count` replies to `{}` POSTed on one kept-alive connection to `port`. */
async function rawReplies(port: number, path: string, count: number): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  const one = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`
  socket.write(one.repeat(count))
  let text = ''
  socket.setEncoding('latin1')
  for await (const chunk of socket) {
    text += chunk as string
    if (text.split('HTTP/1.1 ').length - 1 === count && text.endsWith('"}')) break
  }
  socket.destroy()
  // Node's Date header is the only one that moves between runs
  return text.replace(/\r\nDate: [^\r]*/g, '')
}

test('replyHeaders: each reply goes out with its own length, the same bytes as plain headers', async (t) => {
  const headers = { 'content-type': 'application/json', 'x-extra': 'yes' }
  const sized = replyHeaders(headers)
  assert.deepEqual({ ...sized }, headers)
  assert.ok(Object.isFrozen(sized))
  const routes = new LeanRoutes({ bodyLimit: 1024 })
  const bodies = ['{"a":"1"}', '{"a":"12345"}', '{"a":"123"}']
  for (const [path, replyHeadersOf] of [
    ['/sized', sized],
    ['/plain', headers],
  ] as const) {
    let n = 0
    routes.add({
      method: 'POST',
      path,
      route: path,
      internalError: { status: 500, headers: {}, body: '' },
      handle: () => ({ status: 200, headers: replyHeadersOf, body: Buffer.from(bodies[n++ % 3]!) }),
    })
  }
  const server = routes.serverFactory((_request, response) => response.end(), {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  const { port } = server.address() as AddressInfo
  const sent = await rawReplies(port, '/sized', 3)
  assert.equal(sent, await rawReplies(port, '/plain', 3))
  assert.match(
    sent,
    /^HTTP\/1\.1 200 OK\r\ncontent-type: application\/json\r\nx-extra: yes\r\ncontent-length: 9\r\n/,
  )
  assert.equal(sent.split('content-length: 13\r\n').length, 2)
  assert.equal(sent.split('content-length: 11\r\n').length, 2)
})

test('replyHeaders refuses a header Node would refuse, when it is made', () => {
  assert.throws(() => replyHeaders({ 'bad header': 'x' }))
  assert.throws(() => replyHeaders({ 'x-ok': 'bad\nvalue' }))
})

test('contentLength reads a Content-Length as Number does', () => {
  const lengths = ['0', '7', '42', '0042', '1024', '999999999999999', '1000000000000000', '']
  lengths.push(' 12', '12 ', '1e3', '0x10', '+5', '-5', '1.5', '12a', 'abc', '9'.repeat(20))
  for (const length of lengths) assert.equal(contentLength(length), Number(length), length)
})

test("requests are logged at the level pino is set to, also after it is set again; a child's level is not its parent's", async (t) => {
  const lines: string[] = []
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) })
  const routes = new LeanRoutes({ bodyLimit: 1024 })
  routes.observe({ onResponse: () => {} }, log)
  routes.add({
    method: 'POST',
    path: '/lean',
    route: '/lean',
    internalError: { status: 500, headers: {}, body: '' },
    handle: (_request, _ip, readBody): LeanReply => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: readBody() as string,
    }),
  })
  const server: Server = routes.serverFactory(() => {}, {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  const { socket, text } = await rawConnection((server.address() as AddressInfo).port)
  t.after(() => socket.destroy())
  const incoming = () => lines.filter((line) => line.includes('incoming request')).length
  // before each request, what is done to the logger; then how many requests it has logged
  const steps: Array<[string, () => void, number]> = [
    ['at warn', () => {}, 0],
    ['set to info', () => (log.level = 'info'), 1],
    // a child set to another level (Fastify makes one per request) leaves the logger's own
    ['a child at error', () => log.child({}, { level: 'error' }), 2],
    ['set to warn again', () => (log.level = 'warn'), 2],
  ]
  for (const [i, [name, change, logged]] of steps.entries()) {
    change()
    socket.write(leanRequest('/lean'))
    await replies(text, i + 1)
    assert.equal(incoming(), logged, name)
  }
})

/**
 * Raw exchanges with a server whose /fixed route answers a fixedReply and /plain the same reply
 * as a plain object (Node's ordinary writeHead and end): what each sends, and the socket writes
 * each reply took. The prepended 'request' listener changes a response as a request asks
 * (x-test: no-date, extra-header), as other code on the server could.
 */
async function fixedAndPlain(t: import('node:test').TestContext) {
  const headers = { 'content-type': 'application/json', 'roblox-heartbeat-after': '30' }
  const fixed = fixedReply({ status: 200, headers, body: '{}' })
  const routes = new LeanRoutes({ bodyLimit: 1024 })
  let gate: Promise<void> | undefined
  for (const [path, reply] of [
    ['/fixed', fixed],
    ['/plain', { status: 200, headers, body: '{}' }],
  ] as const) {
    routes.add({
      method: 'POST',
      path,
      route: path,
      internalError: { status: 500, headers: {}, body: '' },
      handle(_request, _ip, readBody): LeanReply | Promise<LeanReply> {
        readBody()
        return gate ? gate.then(() => reply) : reply
      },
    })
  }
  // what Fastify sets (its keepAliveTimeout default)
  const server: Server = routes.serverFactory((_request, response) => response.end(), {
    keepAliveTimeout: 72_000,
  })
  server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => {
    if (request.headers['x-test'] === 'no-date') response.sendDate = false
    if (request.headers['x-test'] === 'extra-header') response.setHeader('x-extra', 'yes')
  })
  /** Per connection (by its client port), each socket.write's bytes. */
  const writes = new Map<number, string[]>()
  server.on('connection', (socket: Socket) => {
    const own: string[] = []
    writes.set(socket.remotePort!, own)
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean
    socket.write = ((data: string | Buffer, ...rest: unknown[]) => {
      own.push(typeof data === 'string' ? data : data.toString('latin1'))
      return write(data, ...rest)
    }) as typeof socket.write
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  const { port } = server.address() as AddressInfo
  /** Sends `text` (its requests' path `{path}`) on a new connection: the replies, their writes. */
  async function exchange(path: string, text: string, replies: number) {
    const socket = connect(port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    const own = socket.localPort!
    socket.write(text.replaceAll('{path}', path))
    let received = ''
    socket.setEncoding('latin1')
    for await (const chunk of socket) {
      received += chunk as string
      if (received.split('\r\n\r\n{}').length - 1 === replies) break
    }
    socket.destroy()
    return { received, writes: writes.get(own) ?? [] }
  }
  return {
    server,
    routes,
    exchange,
    wait: (until: Promise<void>) => (gate = until),
  }
}

const DATE = /\r\nDate: ([^\r]*)/g

/** `received` with each Date's value checked (this second, give or take one) and put aside. */
function withoutDates(received: string): string {
  for (const [, date] of received.matchAll(DATE)) {
    assert.ok(Math.abs(Date.parse(date!) - Date.now()) < 3000, `Date: ${date}`)
  }
  return received.replace(DATE, '\r\nDate: (now)')
}

test('bytes match Node: a fixed reply sends what Node sends, kept-alive in one write', async (t) => {
  const { server, routes, exchange, wait } = await fixedAndPlain(t)
  const post = (head: string) =>
    `POST {path} ${head}\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`
  const cases: Array<[name: string, text: string, replies: number, set?: () => void]> = [
    ['kept alive', post('HTTP/1.1').repeat(3), 3],
    ['Connection: close', post('HTTP/1.1\r\nConnection: close'), 1],
    ['HTTP/1.0', post('HTTP/1.0'), 1],
    ['HTTP/1.0, keep-alive', post('HTTP/1.0\r\nConnection: keep-alive'), 1],
    ['Expect: 100-continue', post('HTTP/1.1\r\nExpect: 100-continue'), 1],
    ['sendDate off', post('HTTP/1.1\r\nx-test: no-date'), 1],
    ['a header set by other code', post('HTTP/1.1\r\nx-test: extra-header'), 1],
    ['no keep-alive timeout', post('HTTP/1.1').repeat(2), 2, () => (server.keepAliveTimeout = 0)],
    [
      'maxRequestsPerSocket, up to the last',
      post('HTTP/1.1').repeat(2),
      2,
      () => {
        server.keepAliveTimeout = 5_000
        server.maxRequestsPerSocket = 2
      },
    ],
  ]
  for (const [name, text, replies, set] of cases) {
    set?.()
    const fixed = await exchange('/fixed', text, replies)
    const plain = await exchange('/plain', text, replies)
    assert.equal(withoutDates(fixed.received), withoutDates(plain.received), name)
    if (name === 'kept alive' || name === 'no keep-alive timeout') {
      // each reply in one write of its whole bytes
      assert.equal(fixed.writes.length, replies, `${name}: writes ${JSON.stringify(fixed.writes)}`)
      assert.equal(fixed.writes.join(''), fixed.received, name)
    }
  }
  const kept = await exchange('/fixed', post('HTTP/1.1'), 1)
  assert.match(
    kept.received,
    /^HTTP\/1\.1 200 OK\r\ncontent-type: application\/json\r\nroblox-heartbeat-after: 30\r\ncontent-length: 2\r\nDate: [^\r]+\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5, max=2\r\n\r\n\{\}$/,
  )
  // a reply in flight as the app closes: Connection: close, as the ordinary path says it
  server.maxRequestsPerSocket = 0
  let open!: () => void
  wait(new Promise<void>((resolve) => (open = resolve)))
  const inFlight = ['/fixed', '/plain'].map((path) => exchange(path, post('HTTP/1.1'), 1))
  while (routes.served < 2 + 2 * cases.reduce((sum, [, , n]) => sum + n, 0) + 1) {
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  routes.close()
  open()
  const [fixed, plain] = await Promise.all(inFlight)
  assert.equal(withoutDates(fixed!.received), withoutDates(plain!.received), 'closing')
  assert.match(fixed!.received, /\r\nconnection: close\r\n/)
})

test('body(true) gives the bytes as they came, at once or after later packets; body() the text', async (t) => {
  const routes = new LeanRoutes({ bodyLimit: 1024 })
  routes.add({
    method: 'POST',
    path: '/raw',
    route: '/raw',
    internalError: { status: 500, headers: {}, body: '' },
    async handle(request, _ip, body): Promise<LeanReply> {
      const asText = request.headers['x-as'] === 'text'
      let read: string | Buffer
      try {
        read = asText ? await body() : await body(true)
      } catch (error) {
        // bodyText's refusal, which a route renders in its protocol's shape
        const { code, status } = error as { code: string; status: number }
        return { status, headers: { 'content-type': 'text/plain' }, body: code }
      }
      assert.equal(typeof read === 'string', asText)
      // the bytes back as they came, the text back utf-8 encoded
      return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: read }
    },
  })
  const { server, port } = await listening(routes)
  t.after(() => server.close())
  /** Sends `body` in `parts` pieces 20 ms apart; the reply's body. */
  const send = async (body: Buffer, parts: number, as = 'bytes') => {
    const socket = connect(port, '127.0.0.1')
    const head =
      `POST /raw HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-As: ${as}\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`
    const cut = Math.floor(body.length / parts)
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body.subarray(0, cut || body.length)]))
    for (let at = cut; cut > 0 && at < body.length; at += cut) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      socket.write(body.subarray(at, Math.min(at + cut, body.length)))
    }
    const chunks: Buffer[] = []
    for await (const chunk of socket) chunks.push(chunk as Buffer)
    const reply = Buffer.concat(chunks)
    return reply.subarray(reply.indexOf('\r\n\r\n') + 4)
  }
  // not UTF-8: a byte-order mark, a lone continuation byte, 0xff
  const odd = Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x80, 0xff, 0x7d])
  assert.deepEqual(await send(odd, 1), odd)
  assert.deepEqual(await send(odd, 3), odd)
  assert.deepEqual(await send(Buffer.alloc(0), 1), Buffer.alloc(0))
  // the text is bodyText's: bytes that are not UTF-8 refused (never U+FFFD), a BOM skipped
  assert.deepEqual(await send(odd, 1, 'text'), Buffer.from('INVALID_JSON'))
  assert.deepEqual(await send(odd, 3, 'text'), Buffer.from('INVALID_JSON'))
  const bom = Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"é":1}')])
  assert.deepEqual(await send(bom, 1, 'text'), Buffer.from('{"é":1}'))
  assert.deepEqual(await send(bom, 4, 'text'), Buffer.from('{"é":1}'))
})
