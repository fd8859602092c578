import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
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
 * A frame handler that throws synchronously (a defect: every expected failure is answered in
 * band) must not end the process: ws calls the message listener from its socket's data handler,
 * so the throw used to be an uncaught exception. No frame makes the real handlers throw, so the
 * connection is served (serveWebSocket, as the plugin does) with a real service and a real
 * fanout whose `subscribe` throws: the fault comes in through the dependencies, ws.ts is not
 * touched.
 */

test('a frame handler that throws: an INTERNAL error frame, close 1011, a log without the token, the process and other connections unharmed', async (t) => {
  const started = await startApp(t)
  const { service } = started
  const real = service.createFanout({
    render: renderNative,
    flapGraceMs: 0,
    replayFrames: 100,
    resumeWindowMs: 1000,
  })
  t.after(() => real.stop())
  const faulty = new Proxy(real, {
    get(target, property, receiver) {
      if (property === 'subscribe') {
        return () => {
          throw new Error('a defect in subscribe')
        }
      }
      const value: unknown = Reflect.get(target, property, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  }) as Fanout
  const logged: { level: string; details: object; message: string }[] = []
  const record = (level: string) => (details: object, message: string) =>
    void logged.push({ level, details, message })
  const log = {
    error: record('error'),
    warn: record('warn'),
    info: record('info'),
    debug: () => {},
  } as unknown as FastifyBaseLogger
  const wheel = new KeepaliveWheel(25_000)
  t.after(() => wheel.stop())
  const deps: RealtimeDeps = {
    fanout: faulty,
    service,
    log,
    queueBytes: 1024 * 1024,
    maxIds: 1000,
    resumeWindowMs: 1000,
    limits: { streamsPerUser: 10, watchesPerUser: 5000, subscribeRate: 1000 },
    wheel,
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

  const client = await connect()
  // a heartbeat first: the connection's presence is ended when it closes
  client.send({ type: 'heartbeat', activity: { kind: 'online' } })
  client.send({ type: 'subscribe', ids: ['1'] })
  assert.deepEqual(await client.waitFor((frame) => frame.type === 'error'), {
    type: 'error',
    code: 'INTERNAL',
    message: 'An unexpected error occurred; reconnect and resume.',
  })
  assert.deepEqual(await client.closed, { code: 1011, reason: 'internal error' })
  const failures = logged.filter((entry) => entry.level === 'error')
  assert.equal(failures.length, 1)
  assert.equal(failures[0]!.message, 'real-time frame handling failed')
  assert.ok(!JSON.stringify(failures[0]!.details).includes(token), 'no token in the log')
  assert.equal(
    ((failures[0]!.details as { err: Error }).err as Error).message,
    'a defect in subscribe',
  )

  // the process lives on, and so does every other connection
  const other = await connect()
  other.send({ type: 'unsubscribe', ids: ['1'] })
  other.send({ type: 'nonsense' })
  assert.equal((await other.take()).code, 'TYPE_UNKNOWN')
  assert.equal(other.socket.readyState, WebSocket.OPEN)
})
