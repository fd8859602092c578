import { randomBytes } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import type { RedisTarget } from '../../src/store/redis/redis-connection.js'

/** The development machine's Redis; tests never flush it, they delete their own prefix. */
export const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379'

/** A key prefix no other test run uses. */
export function uniquePrefix(label = 't'): string {
  return `presenced-test:${label}:${randomBytes(6).toString('hex')}`
}

/** Deletes every key under `prefix` (on every master of a cluster). */
export async function deleteKeys(target: RedisTarget, prefix: string): Promise<number> {
  const pattern = `${prefix}:*`
  if ('url' in target) {
    const client = new Redis(target.url, { lazyConnect: true })
    try {
      await client.connect()
      return await scanDelete(client, pattern)
    } finally {
      client.disconnect()
    }
  }
  const cluster = new Cluster(
    target.cluster.map((seed) => ({
      host: seed.split(':')[0]!,
      port: Number(seed.split(':')[1]),
    })),
  )
  try {
    await new Promise<void>((resolve, reject) => {
      cluster.once('ready', resolve)
      cluster.once('error', reject)
    })
    let total = 0
    for (const node of cluster.nodes('master')) total += await scanDelete(node, pattern)
    return total
  } finally {
    cluster.disconnect()
  }
}

async function scanDelete(client: Redis, pattern: string): Promise<number> {
  let cursor = '0'
  let total = 0
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    // one key per DEL: on a cluster node, keys of different slots cannot share a command
    for (const key of keys) total += await client.del(key)
  } while (cursor !== '0')
  return total
}
