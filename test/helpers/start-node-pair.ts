import type { TestContext } from 'node:test'
import type { AppOverrides } from '../../src/app/build-app.js'
import type { Config } from '../../src/app/config.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from './redis.js'
import { startApp, type StartedApp } from './start-app.js'

/**
 * Two in-process nodes of one fleet, both listening: the machine's Redis under a prefix of their
 * own (`label` names it), no flap grace (a change goes out at once), and `config` on top. The
 * prefix's keys are deleted when the test ends, their count left as a diagnostic. `overrides`
 * (a clock, say) are the two nodes' own: one clock object is shared. Their Redis commands may take
 * 5 s (PRESENCED_REDIS_TIMEOUT): these tests are not about a slow Redis, and a loaded machine's
 * answers late.
 */
export async function startNodePair(
  t: TestContext,
  label: string,
  config: Partial<Config> = {},
  overrides: AppOverrides = {},
): Promise<{ a: StartedApp; b: StartedApp; prefix: string }> {
  const prefix = uniquePrefix(label)
  const shared = {
    redisUrl: LOCAL_REDIS_URL,
    redisPrefix: prefix,
    flapGraceMs: 0,
    redisTimeoutMs: 5000,
    ...config,
  }
  const a = await startApp(t, { ...overrides, config: shared, listen: true })
  const b = await startApp(t, { ...overrides, config: shared, listen: true })
  t.after(async () =>
    t.diagnostic(`deleted ${await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)} keys`),
  )
  return { a, b, prefix }
}
