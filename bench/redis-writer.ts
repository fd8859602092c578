/**
 * Writes for bench/redis-http.ts `--writes N`: N users' presence values a second (spread over
 * ten batches a second, random users 1..`--users`) rewritten in Redis under each `--prefixes`
 * (comma-separated), as their heartbeats would rewrite them: every write of a value invalidates
 * it in the nodes' near caches (near-cache.ts), whose next read of it goes to Redis. Each value is
 * set to what it holds (a Lua `SET` of its `GET`), so the answers stay what the bench checks.
 * Prints one JSON line once started; runs until killed.
 */
import { Redis } from 'ioredis'
import type { UserId } from '../src/core/user-id.js'
import { RedisKeys } from '../src/store/redis/keys.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    url: { type: 'string' },
    prefixes: { type: 'string' },
    users: { type: 'string', default: '100000' },
    'per-second': { type: 'string', default: '1000' },
  },
})
const users = Number(values.users)
const perBatch = Math.max(1, Math.round(Number(values['per-second']) / 10))
const keys = values.prefixes!.split(',').map((prefix) => new RedisKeys(prefix))
const client = new Redis(values.url!)
const REWRITE = "local v = redis.call('GET', KEYS[1]) if v then redis.call('SET', KEYS[1], v) end"
let written = 0

setInterval(() => {
  const pipeline = client.pipeline()
  for (const k of keys) {
    for (let i = 0; i < perBatch; i++) {
      const id = String(1 + Math.floor(Math.random() * users)) as UserId
      pipeline.eval(REWRITE, 1, k.presence(id))
    }
  }
  written += perBatch * keys.length
  void pipeline.exec()
}, 100)
process.on('SIGTERM', () => {
  console.error(`redis-writer: ${written} values rewritten`)
  process.exit(0)
})
console.log(JSON.stringify({ perBatch }))
