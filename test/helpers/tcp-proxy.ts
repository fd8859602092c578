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
  /**
   * From now on, the connections open now carry nothing either way and are never closed: a
   * peer that vanished without a FIN (a host gone, a NAT that forgot the flow). Later
   * connections pass.
   */
  freeze(): void
  /**
   * From now on, counts the chunks clients send that `matches` and the proxy passes on to the
   * server (an HTTP request's head is one chunk): reads the count so far.
   */
  count(matches: (chunk: Buffer) => boolean): () => number
}

/**
 * A TCP proxy in front of a real server (a Redis of the test's own), to fail a request at an
 * exact step: held chunks reach the server only if the proxy is never cut (it always is).
 */
export async function startTcpProxy(t: TestContext, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>()
  const frozen = new WeakSet<Socket>()
  let armed: { matches: (chunk: Buffer) => boolean; stalled: () => void } | undefined
  const counters: { matches: (chunk: Buffer) => boolean; seen: number }[] = []
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
      if (!held && !frozen.has(client)) {
        for (const counter of counters) if (counter.matches(chunk)) counter.seen++
        upstream.write(chunk)
      }
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!held && !frozen.has(client)) client.write(chunk)
    })
    const close = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close).on('close', close)
    // a frozen client hears nothing of the server, not even its going away
    const upstreamClosed = () => (frozen.has(client) ? upstream.destroy() : close())
    upstream.on('error', upstreamClosed).on('close', upstreamClosed)
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
    count: (matches) => {
      const counter = { matches, seen: 0 }
      counters.push(counter)
      return () => counter.seen
    },
    freeze: () => {
      for (const [client] of pairs) frozen.add(client)
    },
    cut: () => {
      armed = undefined
      for (const [client, upstream] of pairs) {
        client.destroy()
        upstream.destroy()
      }
    },
  }
}
