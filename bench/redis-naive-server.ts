/**
 * What a user would write for a Redis-backed presence read: node:http, JSON.parse of the body,
 * one ioredis MGET of each id's record (JSON text of its Roblox presence, kept by the bench),
 * the records joined into the reply. No auth, no privacy, no expiry, no validation beyond
 * JSON.parse. argv: --url redis://… --prefix p. Prints {port}.
 */
import { createServer } from 'node:http'
import { Redis } from 'ioredis'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: { url: { type: 'string' }, prefix: { type: 'string', default: 'naive' } },
})
const redis = new Redis(values.url!)
const prefix = values.prefix

const server = createServer((request, response) => {
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => chunks.push(chunk))
  request.on('end', async () => {
    try {
      const { userIds } = JSON.parse(Buffer.concat(chunks).toString()) as { userIds: number[] }
      const records = await redis.mget(userIds.map((id) => `${prefix}:u:${id}`))
      const body = `{"userPresences":[${records.join(',')}]}`
      response.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      })
      response.end(body)
    } catch {
      response.writeHead(400)
      response.end()
    }
  })
})
// an orderly exit on SIGTERM, so that `node --cpu-prof` writes its profile (redis-http-diag.ts)
process.on('SIGTERM', () => process.exit(0))
await redis.ping()
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }))
})
