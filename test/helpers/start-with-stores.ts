import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { createStores, type Stores } from '../../src/app/create-stores.js'
import { testConfig, type Config } from '../../src/app/config.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from './redis.js'
import { startApp, type StartedApp } from './start-app.js'

/**
 * One listening app on its real stores, which `wrap` may change first (a method that fails
 * once, or does something else just before it runs): embedded, or in fleet mode on the machine's
 * Redis under a prefix of its own (`label` names it, deleted when the test ends). No flap grace.
 */
export async function startWithStores(
  t: TestContext,
  fleet: boolean,
  label: string,
  wrap: (stores: Stores) => void,
): Promise<StartedApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-test-'))
  const prefix = uniquePrefix(label)
  const config: Partial<Config> = {
    flapGraceMs: 0,
    ...(fleet && { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix, redisTimeoutMs: 5000 }),
  }
  const stores = await createStores(testConfig({ dataDir, ...config }))
  wrap(stores)
  const app = await startApp(t, { config, dataDir, stores, listen: true })
  t.after(async () => {
    rmSync(dataDir, { recursive: true, force: true })
    if (fleet) await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)
  })
  return app
}
