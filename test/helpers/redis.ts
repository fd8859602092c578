import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { Cluster, Redis } from 'ioredis'
import type { RedisTarget } from '../../src/store/redis/redis-connection.js'

/** The development machine's Redis; tests never flush it, they delete their own prefix. */
export const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379'

/**
 * Connection options for tests that are not about a slow Redis: commands may take 5 s, not the
 * 500 ms a server gives them, since a loaded machine's Redis answers late rather than never.
 */
export const PATIENT = { commandTimeoutMs: 5000 } as const

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

/**
 * Redis MONITOR on a socket of its own: `onCommand(name, source)` for every command Redis shows
 * (`source`: the client's `host:port`, or `lua` for a script's). Not ioredis's `monitor()`: on a
 * busy shared Redis its first lines can arrive with MONITOR's own reply, which ioredis takes for a
 * reply to no command and throws ("Command queue state error"). Resolves once MONITOR is on.
 */
export async function monitorCommands(
  url: string,
  onCommand: (name: string, source: string) => void,
): Promise<{ close(): void }> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port || 6379), hostname)
  socket.setEncoding('utf8')
  let buffer = ''
  let started: (() => void) | undefined
  let failed: ((error: Error) => void) | undefined
  const ready = new Promise<void>((resolve, reject) => {
    started = resolve
    failed = reject
  })
  socket.on('error', (error) => failed?.(error))
  socket.on('data', (chunk: string) => {
    buffer += chunk
    let end: number
    while ((end = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      if (line === '+OK' && started) {
        started()
        started = undefined
        continue
      }
      // +<time> [<db> <source>] "<command>" "<arg>"...
      const match = /^\+\S+ \[\d+ ([^\]]+)\] "([^"]*)"/.exec(line)
      if (match) onCommand(match[2]!, match[1]!)
    }
  })
  socket.write('MONITOR\r\n')
  await ready
  return { close: () => socket.destroy() }
}
