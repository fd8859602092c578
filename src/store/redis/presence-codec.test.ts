import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import type { Activity, SessionSource } from '../../core/presence.js'
import type { UserId } from '../../core/user-id.js'
import { defaultSettings, summaryOf, type PresenceSummary } from '../../core/privacy.js'
import {
  decodePresence,
  keyText,
  scanValue,
  sessionTail,
  settingsOfBytes,
  settingsOfSummarized,
  settingsOfValue,
  settingsText,
  summarizeAll,
  summarizeBytes,
  summarizeValue,
} from './presence-codec.js'

/**
 * A value's bytes as an MGET reply holds them: a slice of a larger buffer (the parser's), with
 * line breaks and brackets on both sides that a reader must not reach.
 */
function replied(raw: string | null): Buffer | null {
  if (raw === null) return null
  const [before, after] = ['\n]0,\n', '\n]\n,9']
  const bytes = Buffer.from(before + raw + after, 'utf8')
  return bytes.subarray(before.length, bytes.length - after.length)
}

/**
 * A value as the scripts write it (presence.lua `encode`), with the settings folded in (`0` or
 * their text), or as written before settings were folded (`settings` undefined).
 */
function storedValue(
  lastOnline: number | null,
  sessions: Array<{ updatedAgo: number; ttl: number; age: number; key: string; tail: string }>,
  settings?: string,
): string {
  const lines = sessions.map(
    (s) => `,[${s.updatedAgo},${s.ttl},${s.age},${keyText(s.key)},${s.tail}`,
  )
  const head = settings === undefined ? `[${lastOnline}` : `[${lastOnline},${settings}`
  return [head, ...lines, ']'].join('\n')
}

/** Sessions with their line ends as the scripts write them (storedValue's input). */
function withTails<
  S extends { source: SessionSource; deviceType: string; activity: Activity; key: string },
>(sessions: S[]): Array<S & { tail: string }> {
  return sessions.map((s) => ({
    ...s,
    tail: sessionTail(s.source, s.deviceType, s.activity, s.key),
  }))
}

const hidden = { visibility: 'friends', invisible: true, frozenLastOnline: 5 } as const
/** The folds a value may carry: none (an older value), the defaults, other settings. */
const fold = fc.constantFrom(undefined, '0', settingsText(hidden))

/** JSON.parse of a stored value without its settings: what scanValue reads. */
function parsedSessions(raw: string): unknown[] {
  const value = JSON.parse(raw) as unknown[]
  return value.length > 1 && !Array.isArray(value[1]) ? [value[0], ...value.slice(2)] : value
}

const text = fc.string({ unit: 'binary', maxLength: 12 })
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined })
const activity: fc.Arbitrary<Activity> = fc
  .record({
    kind: fc.constantFrom('online', 'inGame', 'inStudio'),
    placeId: optional(fc.oneof(text, fc.constant('='), fc.constant('=='))),
    rootPlaceId: optional(fc.oneof(text, fc.constant('='))),
    universeId: optional(text),
    gameId: optional(fc.oneof(text, fc.constant('='), fc.constant('=x'))),
    location: optional(fc.oneof(text, fc.constant('0'))),
    titleId: optional(text),
    placement: optional(fc.constantFrom('full', 'fill', 'snapped', 'background')),
    titleState: optional(fc.constantFrom('active', 'inactive')),
    richPresence: optional(
      fc.record(
        { id: text, scid: optional(text), params: fc.array(text, { maxLength: 3 }) },
        { requiredKeys: ['id', 'params'] },
      ),
    ),
  })
  .map((a) => {
    // absent fields are absent, not undefined, as writers build them
    const clean = Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined))
    const rp = clean.richPresence as { id: string; scid?: string; params: string[] } | undefined
    if (rp)
      clean.richPresence = rp.scid === undefined ? { id: rp.id, params: rp.params } : { ...rp }
    return clean as unknown as Activity
  })
const session = fc.record({
  key: fc.oneof(
    text,
    text.map((t) => `server:${t}`),
  ),
  source: fc.constantFrom<SessionSource>('app', 'title', 'server'),
  deviceType: text,
  activity,
  updatedAgo: fc.integer({ min: -10_000_000, max: 0 }),
  ttl: fc.integer({ min: 0, max: 10_000_000 }),
  age: fc.integer({ min: -1000, max: 10_000_000 }),
})

test('a stored value decodes to what was written, however odd its strings', () => {
  fc.assert(
    fc.property(fc.array(session, { maxLength: 4 }), fold, (sessions, settings) => {
      const lastOnline = 1_796_052_884_468
      const raw = storedValue(
        lastOnline,
        sessions.map((s) => {
          // a server player's gameId is its key's, as game servers write it
          const written =
            s.key.startsWith('server:') && s.activity.gameId === '='
              ? { ...s, activity: { ...s.activity, gameId: s.key.slice(7) } }
              : s
          return { ...written, tail: sessionTail(s.source, s.deviceType, written.activity, s.key) }
        }),
        settings,
      )
      const decoded = decodePresence('7' as UserId, raw)
      assert.equal(decoded.lastOnline, lastOnline)
      // the fast reader reads every value the scripts write, exactly as JSON.parse does
      assert.deepEqual(scanValue(raw), parsedSessions(raw))
      assert.deepEqual(
        settingsOfValue(raw),
        settings === undefined ? undefined : settings === '0' ? defaultSettings : hidden,
      )
      assert.equal(settingsOfBytes(replied(raw)), settingsOfValue(raw))
      assert.equal(decoded.sessions.length, sessions.length)
      decoded.sessions.forEach((d, i) => {
        const s = sessions[i]!
        const gameId =
          s.key.startsWith('server:') && s.activity.gameId === '='
            ? s.key.slice(7)
            : s.activity.gameId
        assert.deepEqual(d.activity, gameId === undefined ? s.activity : { ...s.activity, gameId })
        assert.equal(d.key, s.key)
        assert.equal(d.source, s.source)
        assert.equal(d.deviceType, s.deviceType)
        assert.equal(d.updatedAt, lastOnline + s.updatedAgo)
        assert.equal(d.expiresAt, d.updatedAt + s.ttl)
        assert.equal(d.startedAt, d.updatedAt - s.age)
      })
    }),
    { numRuns: 500 },
  )
})

test('summarizeValue is summaryOf what decodePresence reads, at any instant', () => {
  const lastOnline = 1_796_052_884_468
  fc.assert(
    fc.property(
      fc.array(session, { maxLength: 4 }),
      fc.integer({ min: -10_000_000, max: 10_000_000 }),
      fold,
      (sessions, offset, settings) => {
        const raw = storedValue(lastOnline, withTails(sessions), settings)
        const now = lastOnline + offset
        const id = '9223372036854775807' as UserId
        const expected = summaryOf(decodePresence(id, raw, now), now)
        assert.deepEqual(hintless(summarizeValue(id, raw, now)), expected)
        // from the bytes: the line ends decoded, then (read again) found by their bytes
        assert.deepEqual(hintless(summarizeBytes(id, replied(raw), now)), expected)
        const bytes = replied(raw)
        assert.deepEqual(hintless(summarizeBytes(id, bytes, now)), expected)
        assert.equal(settingsOfSummarized(bytes), settingsOfValue(raw))
      },
    ),
    { numRuns: 1000 },
  )
})

/**
 * Values as an MGET reply's parser hands them: views of one buffer holding the reply's RESP
 * text (null for a missing key).
 */
function mgetReply(raws: ReadonlyArray<string | null>): (Buffer | null)[] {
  const parts: string[] = [`*${raws.length}\r\n`]
  const at: Array<[number, number] | null> = []
  let length = Buffer.byteLength(parts[0]!)
  for (const raw of raws) {
    if (raw === null) {
      parts.push('$-1\r\n')
      at.push(null)
      length += 5
      continue
    }
    const bytes = Buffer.byteLength(raw)
    const head = `$${bytes}\r\n`
    parts.push(head, raw, '\r\n')
    at.push([length + head.length, bytes])
    length += head.length + bytes + 2
  }
  // its own memory, as a socket's chunk (Buffer.from would take a small one from the pool)
  const reply = Buffer.alloc(length)
  reply.write(parts.join(''))
  return at.map((v) => (v === null ? null : reply.subarray(v[0], v[0] + v[1])))
}

test('summarizeAll reads a reply as summarizeBytes reads each value, with its settings', () => {
  const lastOnline = 1_796_052_884_468
  const value = fc
    .tuple(fc.array(session, { maxLength: 3 }), fold)
    .map(([sessions, settings]) => storedValue(lastOnline, withTails(sessions), settings))
  fc.assert(
    fc.property(
      fc.array(fc.option(value, { freq: 5 }), { maxLength: 12 }),
      fc.integer({ min: -10_000_000, max: 10_000_000 }),
      fc.boolean(),
      (raws, offset, foldDone) => {
        const now = lastOnline + offset
        const ids = raws.map((_, i) => String(i + 1) as UserId)
        const settings = new Array<Readonly<typeof defaultSettings> | undefined>(raws.length)
        const summaries = summarizeAll(ids, mgetReply(raws), now, settings, foldDone)
        raws.forEach((raw, i) => {
          assert.deepEqual(
            hintless(summaries[i]!),
            summaryOf(decodePresence(ids[i]!, raw, now), now),
          )
          const expected = raw || foldDone ? settingsOfValue(raw) : undefined
          assert.equal(settings[i], expected)
        })
      },
    ),
    { numRuns: 500 },
  )
})

test('summarizeBytes tells apart line ends that differ only in their middle bytes', () => {
  // same length, same first and last bytes: only the place id in the middle differs
  const id = '7' as UserId
  const now = 1000
  const activity = (placeId: string): Activity => ({
    kind: 'inGame',
    placeId,
    location: 'a long enough location text to keep the place id away from both ends',
  })
  // the summary of a value of one live app session
  const summary = (key: string, deviceType: string, activity: Activity) => {
    const session = { updatedAgo: 0, ttl: 50, age: 0, key, source: 'app' as const }
    const raw = storedValue(now, withTails([{ ...session, deviceType, activity }]), '0')
    return summarizeBytes(id, replied(raw), now)
  }
  for (const placeId of ['111', '222', '333', '111']) {
    assert.equal(summary('app:PC', 'PC', activity(placeId)).activity?.placeId, placeId)
  }
  // same length and hashed bytes: only the session key's first bytes and the device type differ
  for (const key of ['ab:PC', 'ac:PC', 'ab:PC', 'ab:PCx', 'ac:PCx', 'ab:PCxy', 'ac:PCxy']) {
    assert.equal(summary(key, key.slice(0, 2), activity('111')).deviceType, key.slice(0, 2))
  }
})

test('summarizeValue reads values outside the fast grammar, and none, as decodePresence', () => {
  const id = '7' as UserId
  const tail = sessionTail('app', 'PC', { kind: 'inGame', placeId: '1' }, 'app:PC')
  for (const raw of [
    null,
    '',
    '[1234\n]',
    '[1234,0\n]',
    `[null,${settingsText(hidden)}\n]`,
    '[1000, [0, 50, 0, "app:PC", "a", "PC", [2, "1"]]]',
    '[1000, 0, [0, 50, 0, "app:PC", "a", "PC", [2, "1"]]]',
    storedValue(1000, [
      { updatedAgo: 0, ttl: 50, age: 0, key: 'app:PC', tail },
      { updatedAgo: 5, ttl: 50, age: 0, key: 'app:iOS', tail },
    ]),
  ]) {
    for (const now of [900, 1049, 1050, 1060]) {
      const expected = summaryOf(decodePresence(id, raw, now), now)
      assert.deepEqual(
        hintless(summarizeValue(id, raw, now)),
        expected,
        `${JSON.stringify(raw)} at ${now}`,
      )
      const bytes = replied(raw)
      assert.deepEqual(hintless(summarizeBytes(id, bytes, now)), expected, `bytes at ${now}`)
      assert.equal(settingsOfSummarized(bytes), settingsOfBytes(bytes), JSON.stringify(raw))
    }
    assert.equal(settingsOfBytes(replied(raw)), settingsOfValue(raw), JSON.stringify(raw))
  }
})

/** A summary without its `activityId` hint (not part of its value: summaryOf has none). */
function hintless({ activityId: _, ...value }: PresenceSummary): PresenceSummary {
  return value
}

/** What `read` returns, or the name of what it throws. */
function outcome(read: () => unknown): { value: unknown } | { thrown: string } {
  try {
    return { value: read() }
  } catch (error) {
    return { thrown: (error as Error).name }
  }
}

test('summarizeBytes and settingsOfBytes read any damaged value as the text readers do', () => {
  const lastOnline = 1_796_052_884_468
  // what the fast readers look for, and some text: damage that keeps a value near the grammar
  const damage = fc.constantFrom(...'[],\n0123456789-"n=é'.split(''), '', '\u{1F600}', '\\')
  fc.assert(
    fc.property(
      fc.array(session, { maxLength: 3 }),
      fold,
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), damage), { minLength: 1, maxLength: 3 }),
      fc.integer({ min: -10_000_000, max: 10_000_000 }),
      (sessions, settings, damages, offset) => {
        let raw = storedValue(lastOnline, withTails(sessions), settings)
        for (const [at, length, text] of damages) {
          const from = at % (raw.length + 1)
          raw = raw.slice(0, from) + text + raw.slice(from + length)
        }
        // as Redis holds it (a lone surrogate the damage left is stored as U+FFFD)
        raw = Buffer.from(raw, 'utf8').toString('utf8')
        const now = lastOnline + offset
        const id = '7' as UserId
        // junk that JSON.parse refuses throws from both
        const expected = outcome(() => summarizeValue(id, raw, now))
        const bytes = () => summarizeBytes(id, replied(raw), now)
        assert.deepEqual(outcome(bytes), expected, JSON.stringify(raw))
        assert.deepEqual(outcome(bytes), expected, JSON.stringify(raw))
        assert.deepEqual(
          outcome(() => settingsOfBytes(replied(raw))),
          outcome(() => settingsOfValue(raw)),
          JSON.stringify(raw),
        )
        // after a summary of the value, what it saw of the settings, as settingsOfBytes reads
        const value = replied(raw)
        if ('value' in outcome(() => summarizeBytes(id, value, now))) {
          assert.deepEqual(
            outcome(() => settingsOfSummarized(value)),
            outcome(() => settingsOfBytes(value)),
            JSON.stringify(raw),
          )
        }
      },
    ),
    { numRuns: 3000 },
  )
})

test('reads drop sessions at or past expiry; a value without sessions keeps lastOnline', () => {
  const tail = sessionTail('app', 'PC', { kind: 'online' }, 'app:PC')
  const raw = storedValue(1000, [
    { updatedAgo: 0, ttl: 50, age: 0, key: 'app:PC', tail },
    { updatedAgo: -10, ttl: 100, age: 5, key: 'app:iOS', tail },
  ])
  assert.deepEqual(
    decodePresence('7' as UserId, raw, 1050).sessions.map((s) => s.key),
    ['app:iOS'],
  )
  assert.deepEqual(decodePresence('7' as UserId, '[1234\n]'), {
    userId: '7',
    sessions: [],
    lastOnline: 1234,
  })
  assert.deepEqual(decodePresence('7' as UserId, null), {
    userId: '7',
    sessions: [],
    lastOnline: undefined,
  })
})

test('a user with settings and no lastOnline reads as never online, with its settings', () => {
  const raw = storedValue(null, [], settingsText(hidden))
  assert.deepEqual(decodePresence('7' as UserId, raw, 1000), {
    userId: '7',
    sessions: [],
    lastOnline: undefined,
  })
  assert.equal(summarizeValue('7' as UserId, raw, 1000).lastOnline, undefined)
  assert.deepEqual(settingsOfValue(raw), hidden)
  assert.ok(Object.isFrozen(settingsOfValue(raw)))
  // no value: the defaults (a user with other settings has a value); an older value: unknown
  assert.equal(settingsOfValue(null), defaultSettings)
  assert.equal(settingsOfValue('[1234\n]'), undefined)
  assert.equal(settingsOfValue(storedValue(1, [], '0')), defaultSettings)
  assert.equal(settingsOfBytes(replied(raw)), settingsOfValue(raw))
  assert.equal(settingsOfBytes(null), defaultSettings)
  assert.equal(settingsOfBytes(replied('[1234\n]')), undefined)
  assert.equal(settingsOfBytes(replied(storedValue(1, [], '0'))), defaultSettings)
  assert.equal(settingsText(defaultSettings), '{"visibility":"everyone","invisible":false}')
})

test('the fast reader leaves anything else to JSON.parse', () => {
  for (const raw of [
    '[1\n',
    '[1\n,[0,1,2,"k","a","d",[1]]',
    '[1,2]',
    '{"lo":1}',
    '[1\n]x',
    '[\n]',
  ]) {
    assert.equal(scanValue(raw), undefined, JSON.stringify(raw))
  }
})

test('users in one place share one frozen activity; a game server player keeps its own gameId', () => {
  const place: Activity = { kind: 'inGame', placeId: '1818', rootPlaceId: '1818', location: 'Obby' }
  const appTail = sessionTail('app', 'PC', place, 'app:PC')
  const read = (key: string, tail: string) =>
    decodePresence(
      '7' as UserId,
      storedValue(1000, [{ updatedAgo: 0, ttl: 50, age: 0, key, tail }]),
    ).sessions[0]!.activity
  const a = read('app:PC', appTail)
  assert.equal(read('app:PC', appTail), a)
  assert.ok(Object.isFrozen(a))
  assert.deepEqual(a, place)
  const onServer = (gameId: string) => {
    const key = `server:${gameId}`
    return read(key, sessionTail('server', 'PC', { ...place, gameId }, key))
  }
  const [first, second] = [onServer('g-1'), onServer('g-2')]
  assert.equal(first.gameId, 'g-1')
  assert.equal(second.gameId, 'g-2')
  assert.equal(onServer('g-1'), first)
})

test('summarizeBytes reads lines before a last line whose end it knows', () => {
  const id = '7' as UserId
  const now = 1000
  const line = (key: string, placeId: string, updatedAgo: number) => ({
    updatedAgo,
    ttl: 50,
    age: 0,
    key,
    tail: sessionTail('app', key.slice(4), { kind: 'inGame', placeId }, key),
  })
  const known = storedValue(now, [line('app:PC', '1', 0)], '0')
  assert.equal(summarizeBytes(id, replied(known), now).sessions, 1)
  for (const raw of [
    storedValue(now, [line('app:iOS', '2', 5), line('app:PC', '1', 0)], '0'),
    storedValue(now, [line('app:PC', '1', 0), line('app:PC', '1', 0)], '0'),
    storedValue(
      now,
      [line('app:iOS', '2', 5), line('app:XB', '3', 1), line('app:PC', '1', 0)],
      '0',
    ),
  ]) {
    for (const at of [now, now + 49, now + 50]) {
      const expected = summaryOf(decodePresence(id, raw, at), at)
      assert.deepEqual(hintless(summarizeBytes(id, replied(raw), at)), expected, `${raw} at ${at}`)
    }
  }
})

test('summaries of one activity carry one activityId hint (the reply writer caches by it), none offline', () => {
  const now = 1000
  const line = (key: string, placeId: string) => ({
    updatedAgo: 0,
    ttl: 50,
    age: 0,
    key,
    tail: sessionTail('app', key.slice(4), { kind: 'inGame', placeId }, key),
  })
  const a = summarizeBytes(
    '1' as UserId,
    replied(storedValue(now, [line('app:PC', '31')], '0')),
    now,
  )
  const b = summarizeBytes(
    '2' as UserId,
    replied(storedValue(now, [line('app:iOS', '31')], '0')),
    now,
  )
  const c = summarizeBytes(
    '3' as UserId,
    replied(storedValue(now, [line('app:PC', '32')], '0')),
    now,
  )
  assert.ok(a.activityId !== undefined && a.activityId >= 0, `activityId ${a.activityId}`)
  assert.equal(a.activity, b.activity, 'one interned activity')
  assert.equal(b.activityId, a.activityId)
  assert.notEqual(c.activityId, a.activityId)
  assert.equal(
    summarizeValue('3' as UserId, storedValue(now, [line('app:PC', '32')], '0'), now).activityId,
    c.activityId,
  )
  assert.equal(
    summarizeBytes('4' as UserId, replied(storedValue(now, [], '0')), now).activityId,
    -1,
  )
})
