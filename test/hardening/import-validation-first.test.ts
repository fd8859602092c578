import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import type { UserId } from '../../src/core/user-id.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * "Never a partial write": an import of more lines than one chunk (10,000) whose last line is
 * bad writes nothing, in embedded mode and against the real Redis (11176d7 gave the import's
 * writes a growing deadline; validation must still come first).
 */
const LINES = 10_500

function body(last: string): string {
  const lines: string[] = []
  for (let i = 1; i <= LINES; i++) {
    lines.push(
      i % 3 === 0
        ? `{"type":"friends","a":"${i}","b":"${i + 1}"}`
        : `{"type":"settings","userId":"${i}","visibility":"nobody","invisible":true}`,
    )
  }
  lines.push('{"type":"place","placeId":1818,"universeId":99,"name":"Crossroads"}', last)
  return lines.join('\n') + '\n'
}

const badLastLines: Array<[label: string, line: string, message: RegExp]> = [
  ['malformed JSON', '{"type":"settings","userId":"7"', /line 10502/],
  ['a bad id', '{"type":"settings","userId":"0123","visibility":"nobody"}', /line 10502/],
  ['an unknown type', '{"type":"party","userId":"7"}', /line 10502/],
  ['a bad visibility', '{"type":"settings","userId":"7","visibility":"some"}', /line 10502/],
  ['a friend of self', '{"type":"friends","a":"7","b":"7"}', /line 10502/],
]

for (const mode of ['embedded', 'fleet'] as const) {
  const start = async (t: TestContext) => {
    if (mode === 'embedded') return { ...(await startApp(t)), prefix: undefined }
    const prefix = uniquePrefix('import-first')
    t.after(async () => void (await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)))
    const started = await startApp(t, {
      // what is checked is validation before any write, not Redis's timeout: the good import's
      // commands, on a machine at load average 14, outlasted the default 500 ms (503)
      config: { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix, redisTimeoutMs: 10_000 },
    })
    return { ...started, prefix }
  }

  test(
    `${mode}: an import of ${LINES}+ lines whose last line is bad writes nothing`,
    { timeout: 120_000 },
    async (t) => {
      const { app, stores, prefix } = await start(t)
      const redis = prefix === undefined ? undefined : new Redis(LOCAL_REDIS_URL)
      t.after(() => redis?.disconnect())
      const keys = async () => (redis ? (await redis.keys(`${prefix}:*`)).sort() : [])
      const before = await keys()
      for (const [label, line, message] of badLastLines) {
        const res = await app.inject({
          method: 'POST',
          url: '/admin/v1/import',
          headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
          payload: body(line),
        })
        assert.equal(res.statusCode, 400, `${label}: ${res.body.slice(0, 200)}`)
        assert.equal(res.json().error.code, 'IMPORT_LINE_INVALID', label)
        assert.match(res.json().error.message, message, label)
        const settings = await stores.profiles.getSettings(['1', '2', '10499'] as UserId[])
        for (const s of settings) assert.equal(s.visibility, 'everyone', label)
        assert.deepEqual(await stores.profiles.listFriends('3' as UserId), [], label)
        assert.equal(await stores.profiles.getPlace('1818'), undefined, label)
        assert.deepEqual(await keys(), before, `${label}: no key written`)
      }
      // a key limited to universe 1: the place of universe 99 (line 10501) refuses it all
      const created = await app.inject({
        method: 'POST',
        url: '/admin/v1/keys',
        headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
        payload: JSON.stringify({
          name: 'studio',
          scopes: ['admin', 'presence:write'],
          universes: ['1'],
        }),
      })
      assert.equal(created.statusCode, 201, created.body)
      const afterKey = await keys()
      const limited = await app.inject({
        method: 'POST',
        url: '/admin/v1/import',
        headers: { 'x-api-key': created.json().secret, 'content-type': 'application/x-ndjson' },
        payload: body('{"type":"settings","userId":"7","visibility":"friends"}'),
      })
      assert.equal(limited.statusCode, 403, limited.body.slice(0, 200))
      assert.match(limited.json().error.message, /line 10501/)
      assert.equal(
        (await stores.profiles.getSettings(['1'] as UserId[]))[0]!.visibility,
        'everyone',
      )
      assert.deepEqual(await keys(), afterKey, 'a refused limited import writes no key')
      // the same body with a good last line lands whole
      const good = await app.inject({
        method: 'POST',
        url: '/admin/v1/import',
        headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
        payload: body('{"type":"settings","userId":"7","visibility":"friends"}'),
      })
      assert.equal(good.statusCode, 200, good.body.slice(0, 200))
      assert.equal(
        (await stores.profiles.getSettings(['10499'] as UserId[]))[0]!.visibility,
        'nobody',
      )
    },
  )
}
