import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createStores } from '../../src/app/create-stores.js'
import type { UserId } from '../../src/core/user-id.js'
import type { BusEvent, ChangeBus } from '../../src/realtime/change-bus.js'
import { startApp } from '../helpers/start-app.js'
import { NativeClient, heartbeatFrame } from './native-client.js'

/*
 * A WebSocket heartbeat whose write landed but failed after (announcing the change failed, or
 * the store's reply was lost to a timeout) is answered UNAVAILABLE; the session it wrote must
 * still end when the connection closes, as it did before heartbeats were budgeted. Before the
 * fix, a connection whose only write failed so was taken for one that wrote nothing, and the
 * user stayed online after the disconnect until the session's TTL ran out.
 */

test('a heartbeat written but failed after (the change not announced) still ends when the connection closes', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-hb-end-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const real = await createStores({ dataDir })
  // the bus refuses the next presence change once (the store wrote it already)
  let failNext = false
  const bus: ChangeBus = {
    publish(event: BusEvent) {
      if (failNext && event.type === 'presence') {
        failNext = false
        return Promise.reject(new Error('bus unreachable'))
      }
      return real.bus.publish(event)
    },
    subscribe: (handler) => real.bus.subscribe(handler),
    close: () => real.bus.close(),
  }
  const app = await startApp(t, { dataDir, listen: true, stores: { ...real, bus } })
  const user = '8300' as UserId
  const client = await NativeClient.connect(app.url, await app.tokens.issue(user))
  t.after(() => client.socket.terminate())

  failNext = true
  client.send(heartbeatFrame('written, not announced'))
  const failed = await client.waitFor((frame) => frame.type === 'error')
  assert.equal(failed.code, 'UNAVAILABLE')
  assert.equal(failed.for, 'heartbeat')
  // the write itself landed
  const [written] = await app.stores.presence.getMany([user], Date.now())
  assert.equal(written!.sessions.length, 1)

  await client.close()
  // the session ends with the connection (closed() ends it without waiting for the client)
  const deadline = Date.now() + 3000
  for (;;) {
    const [after] = await app.stores.presence.getMany([user], Date.now())
    if (after!.sessions.length === 0) break
    assert.ok(Date.now() < deadline, 'the session outlived its connection')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
})
