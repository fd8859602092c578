/**
 * The naive Redis server's records (bench/redis-naive-server.ts): each user's record exactly as
 * presenced in Redis mode answers it, so both servers return the same bytes.
 */
import { Redis } from 'ioredis'

/**
 * Asks presenced (on `port`) for users 1..`users`, 50 at a time, and stores each user's reply
 * record as `<prefix>:u:<id>` on the Redis at `url`.
 */
export async function copyReplies(
  port: number,
  users: number,
  url: string,
  prefix: string,
): Promise<void> {
  const client = new Redis(url)
  try {
    for (let first = 1; first <= users; first += 50) {
      const ids = Array.from({ length: Math.min(50, users - first + 1) }, (_, i) => first + i)
      const response = await fetch(`http://127.0.0.1:${port}/v1/presence/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'accept-encoding': 'identity' },
        body: JSON.stringify({ userIds: ids }),
      })
      if (response.status !== 200) throw new Error(`${port}: ${response.status}`)
      const reply = (await response.json()) as { userPresences: Array<{ userId: number }> }
      const pipeline = client.pipeline()
      for (const record of reply.userPresences) {
        pipeline.set(`${prefix}:u:${record.userId}`, JSON.stringify(record))
      }
      await pipeline.exec()
    }
  } finally {
    client.disconnect()
  }
}
