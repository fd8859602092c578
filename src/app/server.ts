import { buildApp, type PresencedApp } from './build-app.js'
import type { Config } from './config.js'

/**
 * Starts presenced and listens; the only place that touches process signals.
 *
 * On SIGTERM or SIGINT: stop accepting connections, let in-flight requests finish (Fastify's
 * close; requests arriving on kept-alive sockets meanwhile get 503), close real-time connections
 * with "going away" (the native plugin's preClose hook), then close the stores, which flushes
 * durable data (lastOnline write-behind, SQLite). Exit 0 when done, 1 if it takes longer than
 * `shutdownTimeoutMs` or fails. A second signal exits 1 at once.
 *
 * A promise rejected with no handler is logged at error level; the server serves on.
 */
export async function startServer(config: Config): Promise<PresencedApp> {
  const presenced = await buildApp(config)
  const { app } = presenced
  let url: string
  try {
    url = await app.listen({ port: config.port, host: config.host })
  } catch (error) {
    await app.close()
    throw error
  }
  // `url` has the real port when PORT=0 asked for any free one
  app.log.info({ url, mode: presenced.stores.mode, dataDir: config.dataDir }, 'presenced is up')

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) {
      app.log.warn({ signal }, 'second signal: exiting without draining')
      process.exit(1)
    }
    closing = true
    app.log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down')
    const hardStop = setTimeout(() => {
      app.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out')
      process.exit(1)
    }, config.shutdownTimeoutMs)
    // the hard stop must not be what keeps the process alive after a clean close
    hardStop.unref()
    app.close().then(
      () => {
        app.log.info('shut down cleanly')
        process.exit(0)
      },
      (error: unknown) => {
        app.log.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  // A promise rejected with no handler is a defect (a library's own retry, say, timing out on a
  // slow Redis). Node's default ends the process; every node of a fleet meets the same slow Redis
  // at once, so one such defect would end them all together. Said at error level, served on.
  process.on('unhandledRejection', (reason) => {
    app.log.error({ err: reason }, 'a promise was rejected with no handler (a defect): serving on')
  })
  return presenced
}
