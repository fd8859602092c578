import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import type { UserId } from '../../src/core/user-id.js'
import { startApp } from '../helpers/start-app.js'
import { tlsFront } from './tls-front.js'

/*
 * The guide's setup, verified: a local CA and a certificate for the four hosts made with the
 * guide's openssl commands, the guide's Node TLS front, and clients that verify the certificate
 * against the CA and address presenced by its Roblox and Xbox host names.
 */

const HOSTS = [
  'presence.roblox.com',
  'auth.roblox.com',
  'users.roblox.com',
  'userpresence.xboxlive.com',
]

function makeCertificates(dir: string): { ca: Buffer; key: Buffer; cert: Buffer } {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  openssl(
    'req',
    '-x509',
    '-new',
    '-nodes',
    '-newkey',
    'rsa:2048',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '825',
    '-subj',
    '/CN=presenced local CA',
  )
  openssl(
    'req',
    '-new',
    '-nodes',
    '-newkey',
    'rsa:2048',
    '-keyout',
    'presenced.key',
    '-out',
    'presenced.csr',
    '-subj',
    '/CN=presence.roblox.com',
  )
  writeFileSync(
    join(dir, 'san.ext'),
    `subjectAltName=${HOSTS.map((h) => `DNS:${h}`).join(',')}\n` +
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  )
  openssl(
    'x509',
    '-req',
    '-in',
    'presenced.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'presenced.crt',
    '-days',
    '825',
    '-extfile',
    'san.ext',
  )
  return {
    ca: readFileSync(join(dir, 'ca.crt')),
    key: readFileSync(join(dir, 'presenced.key')),
    cert: readFileSync(join(dir, 'presenced.crt')),
  }
}

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

/** An https request to `host` (resolved to the front, as a hosts entry would), CA-verified. */
function https(
  port: number,
  ca: Buffer,
  host: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        servername: host,
        port,
        method,
        path,
        ca,
        headers: { host, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const raw = Buffer.concat(chunks)
          const text = (
            res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw
          ).toString()
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text })
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

test("an unmodified client reaches presenced through the guide's local CA and Node TLS front", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-tls-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const { ca, key, cert } = makeCertificates(dir)
  const presenced = await startApp(t, { listen: true, config: { trustProxy: { hops: 1 } } })
  const front = tlsFront({ key, cert, target: new URL(presenced.url) })
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => front.close(() => resolve())))
  const port = (front.address() as AddressInfo).port

  const cookie = `.ROBLOSECURITY=${await presenced.tokens.issue('123' as UserId, { name: 'alice' })};`
  const me = await https(port, ca, 'users.roblox.com', 'GET', '/v1/users/authenticated', { cookie })
  assert.equal(me.status, 200, me.text)
  assert.deepEqual(JSON.parse(me.text), { id: 123, name: 'alice', displayName: 'alice' })

  const csrf = await https(port, ca, 'auth.roblox.com', 'POST', '/v2/logout', {
    cookie,
    'content-length': '0',
  })
  assert.equal(csrf.status, 403)
  const token = csrf.headers['x-csrf-token'] as string
  const body = JSON.stringify({ userIds: [123, 456] })
  const presences = await https(
    port,
    ca,
    'presence.roblox.com',
    'POST',
    '/v1/presence/users',
    {
      cookie,
      'x-csrf-token': token,
      'content-type': 'application/json',
      'content-length': String(body.length),
    },
    body,
  )
  assert.equal(presences.status, 200, presences.text)
  assert.equal((JSON.parse(presences.text) as { userPresences: unknown[] }).userPresences.length, 2)

  // the front's X-Forwarded-Proto is trusted: the logout's cookie-clearing is Secure
  const logout = await https(port, ca, 'auth.roblox.com', 'POST', '/v2/logout', {
    cookie,
    'x-csrf-token': token,
    'content-length': '0',
  })
  assert.equal(logout.status, 200, logout.text)
  assert.match(String(logout.headers['set-cookie']), /Domain=\.roblox\.com.*; Secure/)

  const xbl = `XBL3.0 x=uhs;${await presenced.tokens.issue('2535428504476914' as UserId)}`
  const users = Array.from({ length: 1100 }, (_, i) => String(2535428504476914 + i))
  const batchBody = JSON.stringify({ users, level: 'all' })
  const batch = await https(
    port,
    ca,
    'userpresence.xboxlive.com',
    'POST',
    '/users/batch',
    {
      authorization: xbl,
      'x-xbl-contract-version': '3',
      accept: 'application/json',
      'accept-encoding': 'gzip',
      'content-type': 'application/json',
      'content-length': String(batchBody.length),
    },
    batchBody,
  )
  assert.equal(batch.status, 200, batch.text.slice(0, 200))
  assert.equal(batch.headers['content-encoding'], 'gzip')
  assert.equal((JSON.parse(batch.text) as unknown[]).length, 1100)

  // a certificate for another name is refused by the client, as it must be
  await assert.rejects(https(port, ca, 'www.roblox.com', 'GET', '/v1/users/authenticated'))
})
