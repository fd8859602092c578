import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import type { RedisTarget } from '../../src/store/redis/redis-connection.js'

export interface RedisServerProcess {
  port: number
  process: ChildProcess
  /** SIGKILL, and resolves when the process is gone. */
  kill(): Promise<void>
  /** Starts it again (after `kill`), on the same port and folder with the same arguments. */
  restart(): Promise<RedisServerProcess>
}

export interface LocalRedisCluster {
  /** Seed nodes, `127.0.0.1:port`, masters first. */
  nodes: string[]
  servers: RedisServerProcess[]
  stop(): Promise<void>
}

/**
 * A port that is free now, with its cluster bus port (port + 10000) free too. From
 * PRESENCED_TEST_PORTS (`low-high`) when set: several checkouts testing on one machine, each in
 * a range of its own; else one the system picks.
 */
export async function freePort(withBus = false): Promise<number> {
  const range = /^(\d+)-(\d+)$/.exec(process.env.PRESENCED_TEST_PORTS ?? '')
  if (range) {
    // from a random point of the range: files run at once do not all try its first ports
    const [low, high] = [Number(range[1]), Number(range[2])]
    const start = low + Math.floor(Math.random() * (high - low + 1))
    for (let i = 0; i <= high - low; i++) {
      const port = low + ((start - low + i) % (high - low + 1))
      if (!(await isFree(port))) continue
      if (!withBus || (port + 10000 <= 65535 && (await isFree(port + 10000)))) return port
    }
    throw new Error(`no free port in PRESENCED_TEST_PORTS ${range[0]}`)
  }
  for (;;) {
    const port = await listenZero()
    if (!withBus) return port
    if (port + 10000 <= 65535 && (await isFree(port + 10000))) return port
  }
}

function listenZero(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/**
 * Starts a redis-server of our own on `port` (a test that stops Redis must never touch the
 * machine's). Resolves once it answers PING.
 */
export async function startRedisServer(
  port: number,
  dir: string,
  extra: string[] = [],
): Promise<RedisServerProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, ...extra],
    { stdio: 'ignore' },
  )
  const watchdog = killWithThisProcess(child)
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      watchdog?.kill('SIGKILL')
      resolve()
    }),
  )
  await waitForPing(port, child)
  return {
    port,
    process: child,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
    restart: () => startRedisServer(port, dir, extra),
  }
}

/**
 * A redis-server of the test's own on a free port, to stop and start again (empty unless `extra`
 * asks for persistence), killed and its directory removed when the test ends.
 */
export async function privateRedis(t: TestContext, label: string, extra: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), `presenced-${label}-`))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  let server = await startRedisServer(port, dir, extra)
  t.after(() => server.kill())
  return {
    url: `redis://127.0.0.1:${port}`,
    /** The running redis-server (to SIGSTOP it, say). */
    process: () => server.process,
    stop: () => server.kill(),
    /** Starts it again after `stop`, with `args` instead of `extra` when given. */
    start: async (args = extra) => void (server = await startRedisServer(port, dir, args)),
  }
}

/**
 * A shell holding the read end of a pipe from this process: when this process is gone (a test
 * killed by a timeout or Ctrl-C), its `read` ends and it kills `child`, so a redis-server does
 * not live on, orphaned, holding its port and memory for the next run. Unref'd, so it keeps
 * nothing alive.
 */
function killWithThisProcess(child: ChildProcess): ChildProcess | undefined {
  if (child.pid === undefined) return undefined
  const watchdog = spawn('sh', ['-c', 'read _ || :; kill -9 "$0" 2>/dev/null', String(child.pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
  })
  watchdog.on('error', () => {})
  watchdog.stdin?.on('error', () => {})
  watchdog.unref()
  ;(watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  return watchdog
}

async function waitForPing(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited early`)
    const client = new Redis(port, '127.0.0.1', {
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    })
    client.on('error', () => {})
    try {
      await client.connect()
      if ((await client.ping()) === 'PONG') return
    } catch {
      // not listening yet
    } finally {
      client.disconnect()
    }
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * Starts a local Redis Cluster of `masters` masters (and `replicas` replicas per master) on free
 * ports, with `redis-cli --cluster create`, and waits until every node reports cluster_state:ok.
 */
export async function startRedisCluster(
  options: { masters?: number; replicas?: number } = {},
): Promise<LocalRedisCluster> {
  const masters = options.masters ?? 3
  const replicas = options.replicas ?? 0
  const { servers, ports, stop } = await startClusterNodes(masters * (1 + replicas))
  try {
    const nodes = ports.map((p) => `127.0.0.1:${p}`)
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    )
    if (created.status !== 0) {
      throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)
    }
    await waitForClusterOk(ports)
    return { nodes, servers, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/** `count` cluster-enabled redis-servers on free ports, in a folder of their own, not yet joined. */
async function startClusterNodes(
  count: number,
  extraArgs: string[] = [],
): Promise<{ servers: RedisServerProcess[]; ports: number[]; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-cluster-'))
  const servers: RedisServerProcess[] = []
  const stop = async () => {
    await Promise.all(servers.map((s) => s.kill()))
    rmSync(dir, { recursive: true, force: true })
  }
  const ports: number[] = []
  let collisions = 0
  const start = (port: number) =>
    startRedisServer(port, dir, [
      ...['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`],
      ...['--cluster-node-timeout', '1000', '--appendonly', 'no', ...extraArgs],
    ])
  try {
    while (servers.length < count) {
      const port = await freePort(true)
      if (ports.includes(port)) continue
      // a port (or its bus port) found free can be taken before redis-server binds it: by
      // another test's server, or by a client connection's ephemeral port (the same range as
      // listen(0)'s); redis-server then exits at once, and another port is tried
      const server = await start(port).catch((error: unknown) => {
        if (++collisions > 5 || !String(error).includes('exited early')) throw error
        return undefined
      })
      if (server === undefined) continue
      ports.push(port)
      servers.push(server)
    }
  } catch (error) {
    await stop()
    throw error
  }
  return { servers, ports, stop }
}

async function waitForClusterOk(ports: number[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (const port of ports) {
    const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 })
    try {
      for (;;) {
        const info = await client.cluster('INFO')
        const slots = await client.cluster('SLOTS')
        const replication = await client.info('replication')
        // a replica that never synced has no data age to fail over with: wait for its link
        const synced =
          !replication.includes('role:slave') || replication.includes('master_link_status:up')
        if (String(info).includes('cluster_state:ok') && (slots as unknown[]).length > 0 && synced)
          break
        if (Date.now() > deadline) throw new Error(`cluster node ${port} not ok: ${String(info)}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    } finally {
      client.disconnect()
    }
  }
}

/**
 * A 3-master cluster for the calling test file: started by the first test that asks for its
 * target, stopped when the file's tests are done. Call at the top level of a test file.
 */
export function clusterForThisFile(): () => Promise<RedisTarget> {
  let cluster: Promise<LocalRedisCluster> | undefined
  after(async () => {
    if (cluster) await (await cluster).stop()
  })
  return async () => {
    cluster ??= startRedisCluster({ masters: 3 })
    return { cluster: (await cluster).nodes }
  }
}

export interface PartlyAssignedCluster extends LocalRedisCluster {
  /** Assigns the slots left unassigned, and resolves once every node serves all 16384. */
  assignTheRest(): Promise<void>
}

/**
 * A 3-master cluster whose third master has no slots yet: slots 10923-16383 are unassigned, and
 * with `cluster-require-full-coverage no` the cluster reports cluster_state:ok all the same
 * (what a node starting beside a cluster still being set up sees). `assignTheRest` completes it.
 */
export async function startPartlyAssignedCluster(): Promise<PartlyAssignedCluster> {
  const ranges: Array<[number, number]> = [
    [0, 5460],
    [5461, 10922],
    [10923, 16383],
  ]
  const { servers, ports, stop } = await startClusterNodes(3, [
    '--cluster-require-full-coverage',
    'no',
  ])
  try {
    await onEach(ports, async (client, i) => {
      if (i > 0) await client.cluster('MEET', '127.0.0.1', ports[0]!)
      if (i < 2) await client.cluster('ADDSLOTSRANGE', ...ranges[i]!)
    })
    await waitForSlots(ports, 16384 - 5461)
    return {
      nodes: ports.map((p) => `127.0.0.1:${p}`),
      servers,
      stop,
      assignTheRest: async () => {
        await onEach([ports[2]!], (client) => client.cluster('ADDSLOTSRANGE', ...ranges[2]!))
        await waitForSlots(ports, 16384)
      },
    }
  } catch (error) {
    await stop()
    throw error
  }
}

async function onEach(
  ports: number[],
  work: (client: Redis, index: number) => Promise<unknown>,
): Promise<void> {
  for (const [i, port] of ports.entries()) {
    const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 })
    try {
      await work(client, i)
    } finally {
      client.disconnect()
    }
  }
}

/** Waits until every node knows all 3 masters and serves `count` slots, cluster_state:ok. */
async function waitForSlots(ports: number[], count: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  await onEach(ports, async (client) => {
    for (;;) {
      const info = String(await client.cluster('INFO'))
      const assigned = /cluster_slots_assigned:(\d+)/.exec(info)?.[1]
      const known = /cluster_known_nodes:(\d+)/.exec(info)?.[1]
      if (info.includes('cluster_state:ok') && assigned === String(count) && known === '3') return
      if (Date.now() > deadline) throw new Error(`cluster not at ${count} slots: ${info}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  })
}
