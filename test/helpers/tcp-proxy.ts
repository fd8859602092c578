import { createConnection, createServer, type Server, type Socket } from 'node:net'
import type { TestContext } from 'node:test'

export interface TcpProxy {
  /** Where clients connect instead of the target: `127.0.0.1:<port>`. */
  port: number
  /**
   * From now on, the first chunk a client sends that `matches` is held, with everything sent
   * after it on that connection: to the client, the server hangs right before that command (a
   * Redis stopped mid-request, deterministically). Resolves when it happened.
   */
  stallWhen(matches: (chunk: Buffer) => boolean): Promise<void>
  /** Drops every connection (what was held is never delivered) and stalls nothing any more. */
  cut(): void
}

/**
 * A TCP proxy in front of a real server (a Redis of the test's own), to fail a request at an
 * exact step: held chunks reach the server only if the proxy is never cut (it always is).
 */
export async function startTcpProxy(t: TestContext, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>()
  let armed: { matches: (chunk: Buffer) => boolean; stalled: () => void } | undefined
  const server: Server = createServer((client) => {
    const upstream = createConnection(targetPort, '127.0.0.1')
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    let held = false
    client.on('data', (chunk: Buffer) => {
      if (!held && armed?.matches(chunk)) {
        held = true
        armed.stalled()
        armed = undefined
      }
      if (!held) upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!held) client.write(chunk)
    })
    const close = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const [client, upstream] of pairs) {
          client.destroy()
          upstream.destroy()
        }
        server.close(() => resolve())
      }),
  )
  return {
    port: (server.address() as { port: number }).port,
    stallWhen: (matches) => new Promise<void>((stalled) => (armed = { matches, stalled })),
    cut: () => {
      armed = undefined
      for (const [client, upstream] of pairs) {
        client.destroy()
        upstream.destroy()
      }
    },
  }
}
