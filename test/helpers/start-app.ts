import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { buildApp, type AppOverrides, type PresencedApp } from '../../src/app/build-app.js'
import { testConfig, type Config } from '../../src/app/config.js'

export const ADMIN_KEY = 'test-admin-key'

export interface StartedApp extends PresencedApp {
  /** Base URL when started with `listen: true` (port 0 on 127.0.0.1). */
  url: string
  dataDir: string
}

export interface StartOptions extends AppOverrides {
  config?: Partial<Config>
  /** Listen on a free port (for WebSocket/SSE/real HTTP clients); default: inject only. */
  listen?: boolean
  /** The port to listen on (a server restarted where its clients were); default: a free one. */
  port?: number
  /** Reuse a data dir (e.g. to prove durability across a restart); default: a fresh temp dir. */
  dataDir?: string
}

/**
 * Builds presenced for one test: fresh data dir, quiet logs, admin key ADMIN_KEY, a generous
 * rate limit; closed (and its temp dir removed) when the test ends.
 */
export async function startApp(t: TestContext, options: StartOptions = {}): Promise<StartedApp> {
  const ownDir = options.dataDir === undefined
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'presenced-test-'))
  const config = testConfig({
    dataDir,
    adminKey: ADMIN_KEY,
    tokenSecret: 'test-token-secret-of-enough-length-0123456789',
    rateLimitMax: 100_000,
    authFailureLimit: 100_000,
    xboxReadBurstMax: 100_000,
    xboxReadSustainMax: 100_000,
    serverRateLimitMax: 100_000,
    ...options.config,
  })
  const presenced = await buildApp(config, options)
  let url = ''
  if (options.listen) {
    url = await presenced.app.listen({ port: options.port ?? 0, host: '127.0.0.1' })
  }
  t.after(async () => {
    await presenced.app.close()
    if (ownDir) rmSync(dataDir, { recursive: true, force: true })
  })
  return { ...presenced, url, dataDir }
}
