import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Histogram, Registry } from 'prom-client'
import { RequestDurations } from './request-durations.js'

const name = 'presenced_http_request_duration_seconds'
const help = 'HTTP requests by route pattern, method and status, with their duration.'
const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/** prom-client's own Histogram (what RequestDurations replaces) and ours, fed alike. */
function pair() {
  const oracleRegistry = new Registry()
  const oracle = new Histogram({
    name,
    help,
    labelNames: ['method', 'route', 'status'],
    buckets,
    registers: [oracleRegistry],
  })
  const oursRegistry = new Registry()
  const ours = new RequestDurations({ name, help, buckets }).register(oursRegistry)
  const observe = (method: string, route: string, status: number, seconds: number) => {
    oracle.observe({ method, route, status: String(status) }, seconds)
    ours.observe(method, route, status, seconds)
  }
  return { oracleRegistry, oursRegistry, ours, observe }
}

test('a scrape shows what prom-client Histogram shows for the same requests', async () => {
  const { oracleRegistry, oursRegistry, observe } = pair()
  const routes = ['/v1/presence/users', '/users/batch', '/healthz']
  let seed = 7
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
    return seed / 2_147_483_648
  }
  // interleaved series, values on bucket bounds exactly, beyond the last bound and at zero
  for (let i = 0; i < 2000; i++) {
    const route = routes[Math.floor(random() * routes.length)]!
    const method = random() < 0.8 ? 'POST' : 'GET'
    const status = random() < 0.9 ? 200 : 429
    const pick = random()
    const seconds =
      pick < 0.2
        ? buckets[Math.floor(random() * buckets.length)]!
        : pick < 0.25
          ? 3 + random()
          : pick < 0.3
            ? 0
            : random() / 20
    observe(method, route, status, seconds)
  }
  const expected = await oracleRegistry.metrics()
  assert.ok(expected.includes('status="429"') && expected.includes('le="+Inf"'))
  assert.equal(await oursRegistry.metrics(), expected)
  assert.deepEqual(
    JSON.parse(JSON.stringify(await oursRegistry.getMetricsAsJSON())),
    JSON.parse(JSON.stringify(await oracleRegistry.getMetricsAsJSON())),
  )
  // merged with another registry, as a scrape merges the process metrics
  assert.equal(await Registry.merge([oursRegistry, new Registry()]).metrics(), expected)
})

test('reset forgets every series; a value that is not a number is not counted', async () => {
  const { oursRegistry, ours, observe } = pair()
  observe('POST', '/users/batch', 200, 0.003)
  ours.observe('POST', '/users/batch', 200, Number.NaN)
  const text = await oursRegistry.metrics()
  assert.match(text, /_count\{method="POST",route="\/users\/batch",status="200"\} 1\n/)
  assert.match(text, /_bucket\{le="0.005",method="POST",route="\/users\/batch",status="200"\} 1\n/)
  assert.match(text, /_bucket\{le="0.0025",method="POST",route="\/users\/batch",status="200"\} 0\n/)
  oursRegistry.resetMetrics()
  assert.doesNotMatch(await oursRegistry.metrics(), /_count/)
})
