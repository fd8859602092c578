/**
 * presenced for bench/heartbeat.ts: embedded mode, 500 catalogued places, `--tokens N` access
 * tokens (HS256 with `--secret`) of users 1..N written one per line to `--token-file`, then listening on a free port.
 * Rate limits are out of reach (the bench measures the write, not the 429). Sessions live a day
 * (PRESENCED_SESSION_TTL) and a place read from the catalogue is used for a day
 * (PRESENCED_PLACE_TTL): at speed the bench's users beat every second or so and nothing expires,
 * but under callgrind (bench/heartbeat-callgrind.ts) a window of heartbeats takes minutes, and
 * with the 60 s defaults some of its sessions expired and places were read again mid-window, each
 * the slower path, as many as the window's length made: counts of the same code swung by ~20k
 * instructions per heartbeat. Prints {port}.
 * `--profile file.cpuprofile`: a CPU profile of the serving, written on SIGTERM.
 * `--heap-profile file.heapprofile`: V8's sampling heap profile of the serving (freed objects
 * included: what the requests allocate), from SIGUSR2 to SIGTERM, when it is written
 * (bench/heap-profile-summary.ts).
 * `--redis redis://…` (with `--prefix`): Redis mode on that Redis instead.
 * `--skeleton`: the same app, but the heartbeat's lean route only reads the body and answers
 * `{}` (no auth, rate limit, parse or write): what Node's HTTP and the lean path cost in this
 * process, so bench/heartbeat.ts can show where presenced's CPU per heartbeat goes.
 * `--stop-after auth|parse|write`: the skeleton's route doing the real route's steps up to that
 * one, then answering `{}`: `auth` (the Bearer token checked, the caller a user), `parse` (the
 * body's lossless JSON and the Roblox request's checks), `write` (the service's heartbeat: place,
 * store write, history and change bus; without the rate limit, which the full route adds).
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../src/app/build-app.js'
import { testConfig } from '../src/app/config.js'
import type { UserId } from '../src/core/user-id.js'
import type { Activity } from '../src/core/presence.js'
import { robloxCredential } from '../src/protocols/roblox/auth.js'
import {
  deviceOf,
  parseRegisterRequest,
  quickRegisterBody,
} from '../src/protocols/roblox/requests.js'
import { fixedReply } from '../src/protocols/shared/lean-routes.js'
import { parseJsonBody } from '../src/protocols/shared/lossless-json.js'
import { startCpuProfile, startHeapSampling } from './lib/cpu-profile.js'
import { putPlaces } from './lib/game-servers.js'
import { countedRedisStores } from './redis-setup.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    tokens: { type: 'string', default: '2000' },
    'token-file': { type: 'string' },
    places: { type: 'string', default: '500' },
    profile: { type: 'string' },
    'heap-profile': { type: 'string' },
    redis: { type: 'string' },
    prefix: { type: 'string', default: 'bench-heartbeat' },
    secret: { type: 'string' },
    skeleton: { type: 'boolean', default: false },
    'stop-after': { type: 'string' },
  },
})
const counted = values.redis ? await countedRedisStores(values.redis, values.prefix) : undefined
const presenced = await buildApp(
  testConfig({
    dataDir: mkdtempSync(join(tmpdir(), 'presenced-bench-')),
    rateLimitMax: 1_000_000_000,
    // longer than any bench run (see above)
    sessionTtlSeconds: 86_400,
    placeTtlSeconds: 86_400,
    tokenSecret: values.secret,
  }),
  counted ? { stores: counted.stores } : {},
)
const { service } = presenced
await putPlaces(service, Number(values.places))
const tokens: string[] = []
for (let i = 1; i <= Number(values.tokens); i++) {
  tokens.push(await presenced.tokens.issue(String(i) as UserId, { ttlSeconds: 3600 }))
}
writeFileSync(values['token-file']!, tokens.join('\n'))

const stopAfter = values['stop-after']
if (stopAfter !== undefined && !['auth', 'parse', 'write'].includes(stopAfter)) {
  throw new Error(`--stop-after: auth, parse or write, not ${stopAfter}`)
}
if (values.skeleton || stopAfter !== undefined) {
  const path = '/v1/presence/register-app-presence'
  const answer = fixedReply({
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: '{}',
  })
  // replaces the real route (one route per method and path)
  presenced.lean.add({
    method: 'POST',
    path,
    route: path,
    internalError: answer,
    async handle(request, ip, body) {
      if (stopAfter === undefined) {
        await body()
        return answer
      }
      // the real route's steps, up to `stopAfter`
      const caller = service.auth.requireUser(
        await service.auth.authenticate(robloxCredential(request.headers), ip),
      )
      const text = await body()
      if (stopAfter === 'auth') return answer
      const parsed = parseRegisterRequest(quickRegisterBody(text) ?? parseJsonBody(text))
      if (stopAfter === 'parse') return answer
      // the write without its rate limit, the change published as the route's is
      const activity: Activity = {
        kind: parsed.placeId !== undefined ? 'inGame' : 'online',
      }
      if (parsed.location !== undefined) activity.location = parsed.location
      if (parsed.placeId !== undefined) activity.placeId = parsed.placeId
      const device = deviceOf(parsed, request.headers['user-agent'])
      await service.heartbeat({
        userId: caller.userId,
        key: `app:${device.platform}`,
        source: 'app',
        deviceType: device.deviceType,
        activity,
      })
      return answer
    },
  })
}

const address = await presenced.app.listen({ port: 0, host: '127.0.0.1' })
const stopProfile = values.profile ? await startCpuProfile() : undefined
// started on SIGUSR2, so that a bench can warm the server up first (every token's first
// heartbeat verifies its signature)
let stopHeapProfile: ((file: string) => Promise<void>) | undefined
if (values['heap-profile']) {
  process.once('SIGUSR2', () => {
    void startHeapSampling().then((stop) => (stopHeapProfile = stop))
  })
}
process.once('SIGTERM', () => {
  void (async () => {
    await stopProfile?.(values.profile!)
    await stopHeapProfile?.(values['heap-profile']!)
    process.exit(0)
  })()
})
console.log(
  JSON.stringify({ port: Number(new URL(address).port), writes: counted ? 'counted' : 'none' }),
)
