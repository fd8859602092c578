import fc from 'fast-check'
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'

/** Runs per property: enough to shake out parsers, few enough that a file runs in seconds. */
export const RUNS = Number(process.env.FUZZ_RUNS ?? 150)

export const SEEDED = ['1', '2', '9007199254740993', '9223372036854775807'] as UserId[]

// ---- store instrumentation -----------------------------------------------------------------

const PRESENCE_WRITES = ['heartbeat', 'end'] as const
const PROFILE_WRITES = [
  'putSettings',
  'setFriends',
  'setBlocked',
  'putPlace',
  'putTitle',
  'putUser',
  'putApiKey',
  'importRecords',
] as const

export interface Fixture extends StartedApp {
  clock: ManualClock
  /** Store writes made so far (presence and profiles, every method that changes something). */
  writes: () => number
  /** Everything a request could have changed about the seeded users and catalogues. */
  snapshot: () => Promise<unknown>
  userToken: (id: string) => Promise<string>
}

/**
 * A presenced with a manual clock, seeded users (one in game, one friend of another, a place, a
 * title, a key) and every store write counted: a refused request must not write at all.
 */
export async function fixture(t: TestContext, config: Partial<Config> = {}): Promise<Fixture> {
  const clock = new ManualClock(Date.UTC(2026, 0, 1))
  const presenced = await startApp(t, { clock, config })
  const { service, stores, tokens } = presenced
  await service.heartbeat({
    userId: SEEDED[0]!,
    key: 'app:web',
    source: 'app',
    deviceType: 'Web',
    activity: { kind: 'inGame', placeId: '1818' },
  })
  await service.heartbeat({
    userId: SEEDED[2]!,
    key: 'title:1:XboxOne',
    source: 'title',
    deviceType: 'XboxOne',
    activity: { kind: 'online', titleId: '1', placement: 'full', titleState: 'active' },
  })
  await service.putSettings(SEEDED[1]!, { visibility: 'friends', invisible: false })
  await service.setFriends(SEEDED[0]!, SEEDED[1]!, true)
  await service.putPlace({ placeId: '1818', universeId: '99', rootPlaceId: '1818', name: 'X' })
  await stores.profiles.putTitle({ titleId: '1', name: 'T', strings: {} })
  await stores.profiles.putUser({ userId: SEEDED[0]!, name: 'a', displayName: 'A' })

  let writes = 0
  const count = (target: object, methods: readonly string[]) => {
    const record = target as Record<string, (...args: unknown[]) => unknown>
    for (const name of methods) {
      const original = record[name]
      if (typeof original !== 'function') continue
      record[name] = function (this: unknown, ...args: unknown[]) {
        writes++
        return original.apply(this, args)
      }
    }
  }
  count(stores.presence, PRESENCE_WRITES)
  count(stores.profiles, PROFILE_WRITES)

  const snapshot = async () => ({
    presences: await service.rawPresences(SEEDED),
    settings: await stores.profiles.getSettings(SEEDED),
    friends: await Promise.all(SEEDED.map((id) => stores.profiles.listFriends(id))),
    relations: await stores.profiles.getRelations(SEEDED[0]!, SEEDED),
    place: await stores.profiles.getPlace('1818'),
    title: await stores.profiles.getTitle('1'),
    users: await Promise.all(SEEDED.map((id) => stores.profiles.getUser(id))),
    keys: (await stores.profiles.listApiKeys()).length,
    stats: await stores.presence.stats(clock.now()),
  })
  const userToken = (id: string) => tokens.issue(id as UserId)
  return { ...presenced, clock, writes: () => writes, snapshot, userToken }
}

/**
 * Runs `property` with fast-check and, after every run, asserts the store is unchanged: no write
 * call, and the seeded state deep-equal to what it was.
 */
export async function assertRefusedWithoutWrites<T>(
  f: Fixture,
  arbitrary: fc.Arbitrary<T>,
  send: (input: T) => Promise<LightMyRequestResponse>,
  check: (response: LightMyRequestResponse, input: T) => void,
  runs = RUNS,
): Promise<void> {
  const before = await f.snapshot()
  await fc.assert(
    fc.asyncProperty(arbitrary, async (input) => {
      const writesBefore = f.writes()
      const response = await send(input)
      check(response, input)
      assert.equal(f.writes(), writesBefore, `no store write for ${response.statusCode}`)
    }),
    { numRuns: runs },
  )
  assert.deepEqual(await f.snapshot(), before, 'the store is unchanged')
}

// ---- error shapes ------------------------------------------------------------------------------

function json(response: LightMyRequestResponse): unknown {
  assert.match(String(response.headers['content-type']), /^application\/json/, response.body)
  return JSON.parse(response.body)
}

function status4xx(response: LightMyRequestResponse, allowed?: number[]): void {
  assert.ok(
    response.statusCode >= 400 && response.statusCode < 500,
    `4xx expected, got ${response.statusCode}: ${response.body.slice(0, 300)}`,
  )
  if (allowed) assert.ok(allowed.includes(response.statusCode), `${response.statusCode}`)
}

/** `{"errors":[{"code":<int>,"message":<string>}]}` */
export function robloxError(response: LightMyRequestResponse, allowed?: number[]): void {
  status4xx(response, allowed)
  const body = json(response) as { errors: Array<{ code: unknown; message: unknown }> }
  assert.ok(Array.isArray(body.errors) && body.errors.length === 1, response.body)
  assert.deepEqual(Object.keys(body.errors[0]!), ['code', 'message'])
  assert.ok(Number.isInteger(body.errors[0]!.code))
  assert.equal(typeof body.errors[0]!.message, 'string')
}

/** `{code, source, description, errorCode, errorMessage}` */
export function xboxError(response: LightMyRequestResponse, allowed?: number[]): void {
  status4xx(response, allowed)
  const body = json(response) as Record<string, unknown>
  assert.deepEqual(Object.keys(body).sort(), [
    'code',
    'description',
    'errorCode',
    'errorMessage',
    'source',
  ])
  assert.ok(Number.isInteger(body.code))
  assert.equal(body.code, body.errorCode)
  assert.equal(typeof body.description, 'string')
}

/** `{"error":{"code":<UPPER_CASE>,"message":<string>}}` (admin and native) */
export function codedError(response: LightMyRequestResponse, allowed?: number[]): void {
  status4xx(response, allowed)
  const body = json(response) as { error: { code: unknown; message: unknown } }
  assert.equal(typeof body.error, 'object', response.body)
  assert.match(String(body.error.code), /^[A-Z_]+$/)
  assert.equal(typeof body.error.message, 'string')
}

// ---- arbitraries -------------------------------------------------------------------------------

const INT64_MAX = 9223372036854775807n

/** Ids no protocol may accept: zero, negative, beyond int64, fractional, not numbers at all. */
export const badId: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(0, -1, '0', '-1', '-0', 1.5, '1.5', 1e21, '1e3', '', ' ', '0x10', '+5'),
  fc.constantFrom('9223372036854775808', '18446744073709551616', '-9223372036854775808'),
  // text that is not an id by the one rule (src/core/user-id.ts; ASCII padding alone is taken)
  fc.constantFrom('0123', ' 0123', '+123', '\u00a0123', '123\u3000', '\u2028123', '\ufeff1'),
  fc.constantFrom('１２３', '123.0', '1E3', ' -0 ', '1 2', '\t'),
  fc.bigInt({ min: INT64_MAX + 1n, max: INT64_MAX * 4n }).map(String),
  fc.bigInt({ min: -INT64_MAX * 2n, max: 0n }).map(String),
  fc.integer({ max: 0 }),
  fc.double({ noInteger: true }).filter(Number.isFinite),
  fc.constantFrom(null, true, false, [], {}, [1], { id: 1 }, 'NaN', 'Infinity'),
  fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
    .filter((s) => !/^\s*\d+\s*$/.test(s)),
)

/** Ids every protocol must accept: int64 edges as numbers (when exact) and strings. */
export const goodId: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('1', '9007199254740991', '9007199254740993', INT64_MAX.toString()),
  fc.bigInt({ min: 1n, max: INT64_MAX }).map(String),
)

/** Any JSON value, including deep and wide ones and unicode keys. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.object({ maxDepth: 3, withNullPrototype: false }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue()) },
)

/** A raw body text: often not JSON at all, or JSON that is hostile in size or depth. */
export const rawBody: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom(
    '{',
    '{"userIds":[1,2,',
    '[]',
    'null',
    '"x"',
    '1e999',
    '{"__proto__":{"polluted":1}}',
    '{"constructor":{"prototype":{"polluted":1}}}',
    '\u0000',
    '\ufeff{}',
    '\ufeff{"userIds":[1]}',
    '\ufeff\ufeff{}',
    '{"a":"\\ud800"}',
    '{"\\udfff":1}',
    '{"a":1,"a":2}',
    'userIds=1&userIds=2',
  ),
  fc.integer({ min: 1000, max: 20_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc
    .integer({ min: 1000, max: 20_000 })
    .map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
  fc.integer({ min: 100, max: 3000 }).map((n) => JSON.stringify({ userIds: Array(n).fill(1) })),
  fc.integer({ min: 1, max: 50 }).map((n) => `{"userIds":[${'9'.repeat(n * 10)}]}`),
  anyJson.map((v) => JSON.stringify(v) ?? 'null'),
)

export const contentType: fc.Arbitrary<string | undefined> = fc.constantFrom(
  undefined,
  'application/json',
  'text/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/json; charset=utf-8; charset=utf-16',
  'text/json; charset="UTF-16LE"',
  'application/json; charset=latin1',
  'application/json; charset=',
  'application/x-www-form-urlencoded; charset=iso-8859-1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/xml',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'APPLICATION/JSON',
  '*/*',
  'garbage',
)

export interface RawRequest {
  body: string
  type: string | undefined
}

/** A body and a content type, drawn independently. */
export const rawRequest: fc.Arbitrary<RawRequest> = fc.record({ body: rawBody, type: contentType })

export function headersOf(type: string | undefined, extra: Record<string, string> = {}) {
  return type === undefined ? extra : { 'content-type': type, ...extra }
}

export const admin = { 'x-api-key': ADMIN_KEY }

/** Path segments that are not ids: unicode, traversal, huge, encoded. */
export const badSegment: fc.Arbitrary<string> = fc.oneof(
  badId.map((v) => encodeURIComponent(typeof v === 'string' ? v : (JSON.stringify(v) ?? 'x'))),
  fc.constantFrom('%00', '..%2F..%2Fetc', '%E0%A4%A', 'me', 'xuid()', 'xuid(-1)', '%F0%9F%98%80'),
  fc.integer({ min: 20, max: 3000 }).map((n) => '9'.repeat(n)),
)
