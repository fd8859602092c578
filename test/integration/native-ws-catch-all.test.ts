import assert from 'node:assert/strict'
import type { AddressInfo, Socket } from 'node:net'
import { test, type TestContext } from 'node:test'
import type { FastifyBaseLogger } from 'fastify'
import WebSocket, { WebSocketServer } from 'ws'
import type { UserId } from '../../src/core/user-id.js'
import { startApp } from '../helpers/start-app.js'
import { NativeClient } from './native-client.js'
import type { Fanout } from '../../src/service/realtime.js'
import { KeepaliveWheel } from '../../src/protocols/native/keepalive.js'
import { renderNative } from '../../src/protocols/native/view.js'
import { serveWebSocket, type RealtimeDeps } from '../../src/protocols/native/ws.js'

/*
 * Every listener the server registers on a socket (message, pong, close, error) and the
 * keepalive wheel's timer run from ws's or Node's own handlers: a throw in one would be an
 * uncaught exception, the end of the process. A frame handler that throws synchronously (a defect: every expected failure is answered in
 * band) must not end the process: ws calls the message listener from its socket's data handler,
 * so the throw used to be an uncaught exception. No frame makes the real handlers throw, so the
 * connection is served (serveWebSocket, as the plugin does) with a real service and a real
 * fanout whose `subscribe` throws: the fault comes in through the dependencies, ws.ts is not
 * touched.
 */

interface Faults {
  /** Fanout methods that throw. */
  fanout?: string[]
  /** Census methods that throw. */
  census?: string[]
  /** Log levels that throw. */
  throwingLog?: string[]
  wheelMs?: number
  /** The wheel's period as a connection reads it, each time (a connection's view of the wheel). */
  periodMs?: () => number
}

const throwing = (what: string) => () => {
  throw new Error(`a defect in ${what}`)
}

/** A Proxy of `target` whose `names` throw. */
function faulty<T extends object>(target: T, names: string[] = []): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      if (typeof property === 'string' && names.includes(property)) return throwing(property)
      const value: unknown = Reflect.get(object, property, receiver)
      return typeof value === 'function' ? value.bind(object) : value
    },
  })
}

/**
 * A WebSocket server serving connections as the plugin does (serveWebSocket) with a real service
 * and a real fanout, the faults coming in through the dependencies: ws.ts is not touched.
 */
async function serve(t: TestContext, faults: Faults) {
  const started = await startApp(t)
  const { service } = started
  const real = service.createFanout({
    render: renderNative,
    flapGraceMs: 0,
    replayFrames: 100,
    resumeWindowMs: 1000,
  })
  t.after(() => real.stop())
  const logged: { level: string; details: object; message: string }[] = []
  const record = (level: string) => (details: object, message: string) => {
    logged.push({ level, details, message })
    if (faults.throwingLog?.includes(level)) throw new Error(`a defect in log.${level}`)
  }
  const log = {
    error: record('error'),
    warn: record('warn'),
    info: record('info'),
    debug: () => {},
  } as unknown as FastifyBaseLogger
  const wheel = new KeepaliveWheel(faults.wheelMs ?? 25_000)
  t.after(() => wheel.stop())
  const census = faulty(service.census, faults.census)
  const deps: RealtimeDeps = {
    fanout: faulty(real, faults.fanout) as Fanout,
    service: new Proxy(service, {
      get(object, property, receiver) {
        if (property === 'census') return census
        const value: unknown = Reflect.get(object, property, receiver)
        return typeof value === 'function' ? value.bind(object) : value
      },
    }),
    log,
    queueBytes: 1024 * 1024,
    maxIds: 1000,
    resumeWindowMs: 1000,
    limits: { streamsPerUser: 10, watchesPerUser: 5000, subscribeRate: 1000 },
    wheel: faults.periodMs
      ? new Proxy(wheel, {
          get(object, property, receiver) {
            if (property === 'periodMs') return faults.periodMs!()
            const value: unknown = Reflect.get(object, property, receiver)
            return typeof value === 'function' ? value.bind(object) : value
          },
        })
      : wheel,
  }
  const token = await started.tokens.issue('8300' as UserId)
  const caller = service.auth.requireUser(
    await service.auth.authenticate({ kind: 'token', token, via: 'bearer' }, '127.0.0.1'),
  )
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.after(() => {
    // close waits for every connection to end: the clients go first
    for (const socket of server.clients) socket.terminate()
    return new Promise((resolve) => server.close(resolve))
  })
  server.on('connection', (socket) => serveWebSocket(socket, caller, deps, '127.0.0.1'))
  await new Promise((resolve) => server.once('listening', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const connect = async () => {
    const client = await NativeClient.connect(url, token)
    t.after(() => client.socket.terminate())
    return client
  }
  const errors = () => logged.filter((entry) => entry.level === 'error')
  return { connect, logged, errors, token }
}

/** The process lives on, and so do the other connections. */
async function othersUnharmed(connect: () => Promise<NativeClient>) {
  const other = await connect()
  other.send({ type: 'unsubscribe', ids: ['1'] })
  other.send({ type: 'nonsense' })
  assert.equal((await other.take()).code, 'TYPE_UNKNOWN')
  assert.equal(other.socket.readyState, WebSocket.OPEN)
}

const errorOf = (entry: { details: object }) => (entry.details as { err: Error }).err.message

test('a frame handler that throws: an INTERNAL error frame, close 1011, a log without the token, the process and other connections unharmed', async (t) => {
  const { connect, errors, token } = await serve(t, { fanout: ['subscribe'] })
  const client = await connect()
  // a heartbeat first: the connection's presence is ended when it closes
  client.send({ type: 'heartbeat', activity: { kind: 'online' } })
  client.send({ type: 'subscribe', ids: ['1'] })
  assert.deepEqual(await client.waitFor((frame) => frame.type === 'error'), {
    type: 'error',
    code: 'INTERNAL',
    message: 'An unexpected error occurred; reconnect and resume.',
    close: 1011,
  })
  assert.deepEqual(await client.closed, { code: 1011, reason: 'internal error' })
  const failures = errors()
  assert.equal(failures.length, 1)
  assert.equal(failures[0]!.message, 'real-time frame handling failed')
  assert.ok(!JSON.stringify(failures[0]!.details).includes(token), 'no token in the log')
  assert.equal(errorOf(failures[0]!), 'a defect in subscribe')
  await othersUnharmed(connect)
})

test('a close listener that throws: logged, the process and other connections unharmed', async (t) => {
  const { connect, errors } = await serve(t, { census: ['closed'] })
  const client = await connect()
  client.socket.close(1000, 'bye')
  await client.closed
  await until(() => errors().length > 0)
  assert.deepEqual(
    errors().map((entry) => [entry.message, errorOf(entry)]),
    [['real-time close handling failed', 'a defect in closed']],
  )
  await othersUnharmed(connect)
})

test('an error listener whose log throws: the socket still ends, the process and other connections unharmed', async (t) => {
  const { connect, logged } = await serve(t, { throwingLog: ['warn'] })
  const client = await connect()
  // an unmasked client frame: ws emits 'error' on the server's socket
  const raw = (client.socket as unknown as { _socket: Socket })._socket
  raw.write(Buffer.from([0x81, 0x02, 0x68, 0x69]))
  const closed = await client.closed
  assert.notEqual(closed.code, 1000)
  assert.deepEqual(
    logged.map((entry) => entry.message),
    ['real-time socket error', 'real-time socket error handling failed'],
  )
  await othersUnharmed(connect)
})

test('a keepalive that throws (the wheel’s timer): logged, that connection ended with 1011, the others unharmed', async (t) => {
  // the connection reads the wheel's period at the upgrade, then at each keepalive: that throws
  let reads = 0
  const { connect, errors } = await serve(t, {
    wheelMs: 64,
    periodMs: () => {
      if (reads++ > 0) throw new Error('a defect in the keepalive')
      return 64
    },
  })
  const client = await connect()
  assert.deepEqual(await client.closed, { code: 1011, reason: 'internal error' })
  assert.deepEqual(
    errors().map((entry) => [entry.message, errorOf(entry)]),
    [['real-time keepalive failed', 'a defect in the keepalive']],
  )
  // the others read it without a throw
  reads = -1_000_000
  await othersUnharmed(connect)
})

/** Polls `done` every 10 ms, for 5 s at most. */
async function until(done: () => boolean): Promise<void> {
  const started = performance.now()
  while (!done()) {
    if (performance.now() - started > 5000) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
