import assert from 'node:assert/strict'
import { request } from 'node:http'
import { test } from 'node:test'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/**
 * An import is answered however long it takes to apply: the socket's idle timeout (60 s, Node's
 * idle timeout, armed per connection) counted the apply as idleness, so a large import in fleet
 * mode (250k lines: 193 s on a loaded machine) went on to finish with nobody told. Here the idle
 * timeout is cut to 100 ms so that an import of 60,000 lines outlasts it.
 */
test('an import that takes longer than the idle timeout to apply is still answered', async (t) => {
  const presenced = await startApp(t, { listen: true, connectionTimeoutMs: 100 })
  const lines: string[] = []
  for (let i = 0; i < 30_000; i++) {
    lines.push(`{"type":"friends","a":"${1_000_000 + i}","b":"${2_000_000 + i}"}`)
    lines.push(`{"type":"settings","userId":"${1_000_000 + i}","visibility":"friends"}`)
  }
  const body = Buffer.from(lines.join('\n') + '\n')
  const started = performance.now()
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const url = new URL('/admin/v1/import', presenced.url)
    const req = request(url, {
      method: 'POST',
      headers: {
        'x-api-key': ADMIN_KEY,
        'content-type': 'application/x-ndjson',
        'content-length': body.length,
      },
    })
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
  const ms = performance.now() - started
  assert.equal(answer.status, 200, answer.body)
  assert.equal((JSON.parse(answer.body) as { records: number }).records, 60_000)
  assert.ok(ms > 100, `the import took ${ms.toFixed(0)} ms: not longer than the timeout`)
})
