import fc from 'fast-check'
import { test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import {
  admin,
  assertRefusedWithoutWrites,
  codedError,
  fixture,
  robloxError,
  xboxError,
} from './fuzz-kit.js'

/*
 * Every write route, with a body that is right but for its encoding: bytes that are not UTF-8
 * inside one of its strings, or a charset the service does not read. Each is refused in the
 * protocol's own shape and writes nothing (src/protocols/shared/body-text.ts); before, such
 * bytes were stored as U+FFFD and a UTF-16 label was ignored.
 */

const GAME = '6f1c1a52-3b0e-4a8e-9d65-0a3c0d2f8c11'

/** Byte sequences UTF-8 never has: stray, overlong, surrogate, truncated, beyond U+10FFFF. */
const notUtf8 = fc.constantFrom(
  [0xff],
  [0xfe],
  [0x80],
  [0xbf, 0xbf],
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
)

/** A charset parameter naming anything but UTF-8, in the spellings clients use. */
const otherCharset = fc.constantFrom(
  'utf-16',
  'UTF-16LE',
  'utf-16be',
  'utf-32',
  'iso-8859-1',
  '"latin1"',
  'windows-1252',
  'us-ascii',
  'shift_jis',
  'utf-7',
)

type Auth = 'user' | 'xbl' | 'admin' | 'server'
interface Route {
  method: 'POST' | 'PUT' | 'PATCH'
  url: string
  auth: Auth
  /** The body, with `@` where the bytes go (inside a string). */
  body: string
  type: string
  check: (response: LightMyRequestResponse) => void
}

const routes: Route[] = [
  {
    method: 'POST',
    url: '/v1/presence/register-app-presence',
    auth: 'user',
    body: '{"location":"G@me","placeId":1818}',
    type: 'application/json',
    check: (r) => robloxError(r, [400, 415]),
  },
  {
    method: 'POST',
    url: '/v1/presence/register-app-presence',
    auth: 'user',
    body: 'location=G@me&placeId=1818',
    type: 'application/x-www-form-urlencoded',
    check: (r) => robloxError(r, [400, 415]),
  },
  {
    method: 'PUT',
    url: '/v1/presence/settings',
    auth: 'user',
    body: '{"visibility":"friends@"}',
    type: 'text/json',
    check: (r) => robloxError(r, [400, 415]),
  },
  {
    method: 'POST',
    url: '/users/me/devices/current/titles/current',
    auth: 'xbl',
    body: '{"id":"1","activity":{"richPresence":{"id":"m@p","params":["a"]}}}',
    type: 'application/json',
    check: (r) => xboxError(r, [400, 415]),
  },
  {
    method: 'PUT',
    url: '/users/me/state',
    auth: 'xbl',
    body: '{"state":"Cloaked@"}',
    type: 'application/json',
    check: (r) => xboxError(r, [400, 415]),
  },
  {
    method: 'PUT',
    url: `/api/v1/servers/${GAME}`,
    auth: 'server',
    body: '{"placeId":1818,"players":["3@"]}',
    type: 'application/json',
    check: (r) => codedError(r, [400, 415]),
  },
  {
    method: 'PUT',
    url: '/admin/v1/users/3',
    auth: 'admin',
    body: '{"name":"thr@ee"}',
    type: 'application/json',
    check: (r) => codedError(r, [400, 415]),
  },
  {
    method: 'PUT',
    url: '/admin/v1/titles/9',
    auth: 'admin',
    body: '{"name":"T","strings":{"m":{"default":"Pl@ying"}}}',
    type: 'application/json',
    check: (r) => codedError(r, [400, 415]),
  },
  {
    method: 'PUT',
    url: '/admin/v1/places/5',
    auth: 'admin',
    body: '{"universeId":1,"name":"Pl@ce"}',
    type: 'application/json',
    check: (r) => codedError(r, [400, 415]),
  },
  {
    method: 'POST',
    url: '/admin/v1/keys',
    auth: 'admin',
    body: '{"name":"k@","scopes":["presence:read"]}',
    type: 'application/json',
    check: (r) => codedError(r, [400, 415]),
  },
  {
    method: 'POST',
    url: '/admin/v1/webhooks',
    auth: 'admin',
    body: '{"url":"https://example.com/h@"}',
    type: 'application/json',
    check: (r) => codedError(r, [400, 415]),
  },
  {
    method: 'POST',
    url: '/admin/v1/import',
    auth: 'admin',
    body: '{"type":"user","userId":"3","name":"a"}\n{"type":"user","userId":"4","name":"b@"}\n',
    type: 'application/x-ndjson',
    check: (r) => codedError(r, [400, 415]),
  },
]

test('every write route: bytes not UTF-8 or another charset are refused in its shape, nothing written', async (t) => {
  // refused writes count against the Xbox write budgets too: room for every run
  const f = await fixture(t, { xboxBurstMax: 1_000_000, xboxSustainMax: 1_000_000 })
  const token = await f.userToken('2')
  const server = (await f.service.keys.create({ name: 'gs', scopes: ['presence:write'] })).secret
  const auth: Record<Auth, Record<string, string>> = {
    user: { authorization: `Bearer ${token}` },
    xbl: { authorization: `XBL3.0 x=1;${token}`, 'x-xbl-contract-version': '3' },
    admin,
    server: { 'x-api-key': server },
  }
  await assertRefusedWithoutWrites(
    f,
    fc.record({
      route: fc.constantFrom(...routes),
      bytes: notUtf8,
      // undefined: the bytes; else the body as sent, right but for its charset
      charset: fc.option(otherCharset, { nil: undefined }),
    }),
    ({ route, bytes, charset }) => {
      const [before, after] = route.body.split('@') as [string, string]
      const payload =
        charset === undefined
          ? Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)])
          : before + after
      const type = charset === undefined ? route.type : `${route.type}; charset=${charset}`
      return f.app.inject({
        method: route.method,
        url: route.url,
        headers: { ...auth[route.auth], 'content-type': type },
        payload,
      })
    },
    ({ statusCode, ...response }, { route, charset }) => {
      route.check({ statusCode, ...response } as LightMyRequestResponse)
      if ((charset === undefined) !== (statusCode === 400)) {
        throw new Error(`${route.url} charset ${String(charset)}: ${statusCode}`)
      }
    },
  )
})
