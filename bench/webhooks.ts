/**
 * Webhook throughput: one presenced node makes `--rate` visible presence changes per second for
 * `--seconds` seconds (through the service, as a heartbeat would), each becoming one webhook
 * event for one endpoint; a local receiver in another process verifies every signature and
 * measures each event's lateness (arrival − the change's `occurredAt`). Lateness percentiles are
 * printed per time window, so a growing backlog shows as growing lateness.
 *
 *   npx tsx bench/webhooks.ts                         # embedded, then Redis; 1000/s for 30 s
 *   npx tsx bench/webhooks.ts --mode redis --rate 2000 --seconds 10
 *
 * The presenced node runs in a child process (its own core on a 2-core machine); the receiver
 * and this report run here. Redis mode uses the machine's Redis under a prefix of its own,
 * deleted afterwards.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../src/app/build-app.js'
import { testConfig } from '../src/app/config.js'
import type { UserId } from '../src/core/user-id.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../test/helpers/redis.js'
import { benchArgs } from './lib/args.js'

const { values: args } = benchArgs(import.meta.url, {
  options: {
    mode: { type: 'string', default: 'both' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '30' },
    window: { type: 'string', default: '5' },
    users: { type: 'string', default: '1000' },
    /** Requests in flight per endpoint (PRESENCED_WEBHOOK_CONCURRENCY); default the server's. */
    concurrency: { type: 'string' },
    /** Write the presenced node's CPU profile (.cpuprofile) into this directory. */
    profile: { type: 'string' },
    role: { type: 'string', default: 'report' },
    receiver: { type: 'string' },
    prefix: { type: 'string' },
  },
})
const rate = Number(args.rate)
const seconds = Number(args.seconds)
const users = Number(args.users)

interface Started {
  type: 'started'
  secret: string
  at: number
}
interface Finished {
  type: 'finished'
  changes: number
  at: number
}
interface Drained {
  type: 'drained'
  queued: number
  parked: number
  /** CPU time (user + system) the node spent from the first change until drained, ms. */
  cpuMs: number
}
type FromServer = Started | Finished | Drained

if (args.role === 'server') await serve()
else await report()

/** The presenced node: makes the changes and delivers their events. */
async function serve(): Promise<void> {
  const send = (message: FromServer) => process.send!(message)
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-bench-webhooks-'))
  const presenced = await buildApp(
    testConfig({
      dataDir,
      adminKey: 'bench',
      sessionTtlSeconds: 3600,
      rateLimitMax: 1_000_000_000,
      ...(args.prefix && { redisUrl: LOCAL_REDIS_URL, redisPrefix: args.prefix }),
      ...(args.concurrency && { webhookConcurrency: Number(args.concurrency) }),
    }),
  )
  const { service } = presenced
  const { key } = await service.keys.create({ name: 'bench', scopes: ['presence:read:private'] })
  const { webhook, secret } = await service.webhooks.create({ url: args.receiver!, keyId: key.id })
  send({ type: 'started', secret, at: Date.now() })

  // changes on an absolute schedule: a slow tick is caught up, never skipped
  const cpu = process.cpuUsage()
  const started = performance.now()
  let made = 0
  let writing = 0
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = (performance.now() - started) / 1000
      const due = Math.min(rate * seconds, Math.floor(elapsed * rate))
      for (; made < due; made++) {
        const n = made
        writing++
        void service
          .heartbeat({
            userId: String(1 + (n % users)) as UserId,
            key: 'app:PC',
            source: 'app',
            deviceType: 'PC',
            // a new location every time: each change is visible, so each makes one event
            activity: { kind: 'online', location: `spot ${n}` },
          })
          .finally(() => writing--)
      }
      if (made >= rate * seconds && writing === 0) {
        clearInterval(timer)
        resolve()
      }
    }, 5)
  })
  send({ type: 'finished', changes: made, at: Date.now() })
  // wait until the queue is empty, then report what is left (nothing, or parked events)
  for (;;) {
    const details = await service.webhooks.get(webhook.id)
    if (details!.queued === 0) {
      const used = process.cpuUsage(cpu)
      send({
        type: 'drained',
        queued: details!.queued,
        parked: details!.parked,
        cpuMs: (used.user + used.system) / 1000,
      })
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await presenced.app.close()
  rmSync(dataDir, { recursive: true, force: true })
  process.exit(0)
}

interface Arrival {
  at: number
  lateness: number
}

/** The receiver and the report. */
async function report(): Promise<void> {
  const modes = args.mode === 'both' ? ['embedded', 'redis'] : [args.mode!]
  console.log(
    `webhooks: ${rate} events/s for ${seconds} s to one local receiver, ${users} users, ` +
      `windows of ${args.window} s (this machine has 2 cores and is shared with other work)`,
  )
  for (const mode of modes) await run(mode)
}

async function run(mode: string): Promise<void> {
  let secret = ''
  const arrivals: Arrival[] = []
  const seen = new Set<string>()
  let duplicates = 0
  let badSignatures = 0
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const at = Date.now()
      const body = Buffer.concat(chunks).toString('utf8')
      const timestamp = String(req.headers['x-presenced-timestamp'])
      const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
      if (req.headers['x-presenced-signature'] !== expected) badSignatures++
      const event = JSON.parse(body) as { id: string; occurredAt: string }
      if (seen.has(event.id)) duplicates++
      seen.add(event.id)
      arrivals.push({ at, lateness: at - Date.parse(event.occurredAt) })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`
  const prefix = mode === 'redis' ? uniquePrefix('bench-webhooks') : undefined

  const child: ChildProcess = fork(
    new URL(import.meta.url).pathname,
    [
      '--role',
      'server',
      '--receiver',
      url,
      '--rate',
      String(rate),
      '--seconds',
      String(seconds),
      '--users',
      String(users),
      ...(prefix ? ['--prefix', prefix] : []),
      ...(args.concurrency ? ['--concurrency', args.concurrency] : []),
    ],
    {
      execArgv: [
        '--import',
        'tsx',
        ...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`] : []),
      ],
    },
  )
  const messages: FromServer[] = []
  const next = <T extends FromServer['type']>(type: T) =>
    new Promise<Extract<FromServer, { type: T }>>((resolve, reject) => {
      const found = messages.find((m) => m.type === type)
      if (found) return resolve(found as Extract<FromServer, { type: T }>)
      const onMessage = (message: FromServer) => {
        if (message.type !== type) return
        child.off('message', onMessage)
        resolve(message as Extract<FromServer, { type: T }>)
      }
      child.on('message', onMessage)
      child.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
    })
  child.on('message', (message: FromServer) => messages.push(message))

  const started = await next('started')
  secret = started.secret
  const finished = await next('finished')
  const drained = await next('drained')
  const drainedAt = Date.now()
  await new Promise((resolve) => child.once('exit', resolve))
  receiver.close()
  if (prefix) await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)

  console.log(`\n${mode}:`)
  console.log('window (s)    received   p50 ms   p99 ms   max ms')
  const windowMs = Number(args.window) * 1000
  const t0 = started.at
  const end = Math.max(drainedAt, ...arrivals.map((a) => a.at))
  for (let from = t0; from < end; from += windowMs) {
    const inWindow = arrivals.filter((a) => a.at >= from && a.at < from + windowMs)
    if (inWindow.length === 0) continue
    const lateness = inWindow.map((a) => a.lateness).sort((a, b) => a - b)
    const q = (p: number) =>
      lateness[Math.min(lateness.length - 1, Math.floor(p * lateness.length))]!
    const label = `${((from - t0) / 1000).toFixed(0)}-${((from - t0 + windowMs) / 1000).toFixed(0)}`
    console.log(
      `${label.padEnd(12)} ${String(inWindow.length).padStart(9)} ${String(q(0.5)).padStart(8)} ${String(q(0.99)).padStart(8)} ${String(lateness.at(-1)).padStart(8)}`,
    )
  }
  const lastArrival = Math.max(...arrivals.map((a) => a.at))
  const all = arrivals.map((a) => a.lateness).sort((a, b) => a - b)
  const pct = (p: number) => all[Math.min(all.length - 1, Math.floor(p * all.length))]
  console.log(
    `changes ${finished.changes}, events received ${seen.size} (+${duplicates} duplicates), ` +
      `bad signatures ${badSignatures}, parked ${drained.parked}; ` +
      `achieved ${((finished.changes / (finished.at - t0)) * 1000).toFixed(0)} changes/s; ` +
      `last event ${lastArrival - finished.at} ms after the last change; ` +
      `overall p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${all.at(-1)} ms`,
  )
  console.log(
    `node CPU: ${((drained.cpuMs / finished.changes) * 1000).toFixed(0)} µs per change and its event ` +
      `(${((drained.cpuMs / (drainedAt - t0)) * 100).toFixed(0)} % of one core over the run)`,
  )
}
