/**
 * Waits longer than a timer can hold. Node's setTimeout takes at most 2^31 - 1 ms (about 24.8
 * days); a longer delay, Infinity included, is replaced by 1 ms with a TimeoutOverflowWarning.
 * Every wait of the SDK and the CLI that a caller or a server chooses must stay a long wait:
 * a server asking for a heartbeat every 35 days, `timeoutMs: Infinity`, `--timeout 1e9`.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test, type TestContext } from 'node:test'
import { createClient, PresenceType } from '@presenced/client'
import { startApp } from '../helpers/start-app.js'

/** A number of seconds whose milliseconds, even at 80 % (the beat's safety), overflow a timer. */
const FIVE_WEEKS_S = 3_000_000

/** The TimeoutOverflowWarnings the process emits while the test runs. */
function overflowWarnings(t: TestContext): string[] {
  const seen: string[] = []
  const onWarning = (warning: Error) => {
    if (warning.name === 'TimeoutOverflowWarning') seen.push(warning.message)
  }
  process.on('warning', onWarning)
  t.after(() => process.off('warning', onWarning))
  return seen
}

/** The global fetch, counting the requests to each path. */
function countingFetch() {
  const counts = new Map<string, number>()
  const fetch = (input: string, init?: RequestInit) => {
    const path = new URL(input).pathname
    counts.set(path, (counts.get(path) ?? 0) + 1)
    return globalThis.fetch(input, init)
  }
  return { fetch, count: (path: string) => counts.get(path) ?? 0 }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

test('keepAlive: a server asking for a beat every 5 weeks gets one beat, not one a millisecond', async (t) => {
  const warnings = overflowWarnings(t)
  // the Roblox heartbeat-after is half the session TTL
  const server = await startApp(t, {
    listen: true,
    config: { sessionTtlSeconds: 2 * FIVE_WEEKS_S },
  })
  const { fetch, count } = countingFetch()
  const client = createClient({
    baseUrl: server.url,
    token: await server.tokens.issue('77' as never),
    fetch,
  })
  const alive = client.keepAlive({ placeId: 1818 })
  try {
    await alive.ready
    assert.equal(alive.intervalMs, FIVE_WEEKS_S * 1000)
    await sleep(300)
    assert.equal(count('/v1/presence/register-app-presence'), 1, 'one beat in 300 ms')
    assert.deepEqual(warnings, [])
  } finally {
    // before the server closes (its t.after hook runs first)
    await alive.stop()
  }
  assert.equal((await client.getUserPresence(77)).type, PresenceType.Offline)
})

test('xbox.setTitlePresence: an X-Heartbeat-After of 5 weeks gets one beat, not one a millisecond', async (t) => {
  const warnings = overflowWarnings(t)
  const server = await startApp(t, {
    listen: true,
    config: { xboxHeartbeatSeconds: FIVE_WEEKS_S },
  })
  const { fetch, count } = countingFetch()
  const client = createClient({
    baseUrl: server.url,
    token: await server.tokens.issue('78' as never),
    fetch,
  })
  const title = client.xbox.setTitlePresence({ titleId: 1717113201 })
  try {
    await title.ready
    await sleep(300)
    assert.equal(count('/users/xuid(78)/devices/current/titles/current'), 1, 'one beat in 300 ms')
    assert.deepEqual(warnings, [])
  } finally {
    await title.stop()
  }
})

test('timeoutMs: Infinity, or past 24.8 days, is no limit rather than 1 ms', async (t) => {
  const warnings = overflowWarnings(t)
  const server = await startApp(t, { listen: true })
  for (const timeoutMs of [Infinity, 30 * 24 * 3600 * 1000]) {
    const client = createClient({ baseUrl: server.url, timeoutMs, retry: false })
    const [presence] = await client.getUserPresences([1])
    assert.equal(presence?.type, PresenceType.Offline, `timeoutMs ${timeoutMs}`)
  }
  assert.deepEqual(warnings, [])
})

test('subscribe: idleTimeoutMs: Infinity keeps no 1 ms timer going', async (t) => {
  const warnings = overflowWarnings(t)
  const server = await startApp(t, { listen: true })
  const client = createClient({
    baseUrl: server.url,
    token: await server.tokens.issue('79' as never),
  })
  const sub = client.subscribe([1], { transport: 'sse', idleTimeoutMs: Infinity })
  t.after(() => sub.close())
  await sub.ready
  await sleep(100)
  assert.deepEqual(warnings, [])
})

/** Runs the CLI to its end. */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/presenced.js', ...args], {
    cwd: new URL('../../', import.meta.url),
    env: { ...process.env, PRESENCED_URL: '', PRESENCED_TOKEN: '', PRESENCED_ADMIN_KEY: '' },
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer)
      resolve({ code, stdout, stderr })
    }),
  )
}

test(
  'CLI --timeout past 24.8 days waits, rather than failing after 1 ms',
  { timeout: 90_000 },
  async (t) => {
    const server = await startApp(t, { listen: true })
    for (const timeout of ['1e9', '99999999999']) {
      const result = await run(['get', '5', '--url', server.url, '--timeout', timeout])
      assert.equal(result.code, 0, `--timeout ${timeout}: ${result.stderr}`)
      assert.match(result.stdout, /^5\s+Offline/m)
      assert.doesNotMatch(result.stderr, /TimeoutOverflowWarning/)
    }
  },
)
