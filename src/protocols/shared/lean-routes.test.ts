import assert from 'node:assert/strict'
import { request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { LeanRoutes, type LeanReply } from './lean-routes.js'

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
  const server: Server = routes.serverFactory((_request, response) => {
    response.statusCode = 404
    response.end()
  }, {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { server, port, reclaimed }
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
