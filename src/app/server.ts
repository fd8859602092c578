import { buildApp, type PresencedApp } from './build-app.js'
import type { Config } from './config.js'

/**
 * Starts presenced and listens; the only place that touches process signals. SIGTERM and SIGINT
 * stop accepting, drain in-flight requests, flush durable data, and exit 0.
 */
export async function startServer(config: Config): Promise<PresencedApp> {
  const presenced = await buildApp(config)
  const { app } = presenced
  await app.listen({ port: config.port, host: config.host })
  app.log.info({ mode: presenced.stores.mode, dataDir: config.dataDir }, 'presenced is up')

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down')
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        app.log.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))
  return presenced
}
