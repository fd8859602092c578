import assert from 'node:assert/strict'
import { request } from 'node:http'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { ManualClock } from '../../src/service/clock.js'
import type { Config } from '../../src/app/config.js'
import { startApp, type StartedApp } from './start-app.js'

/*
 * The harness of the tests that hold a lean route (answered on node:http, see
 * src/protocols/shared/lean-routes.ts) to the Fastify route it stands in for: each request is
 * sent as is (the lean path takes it) and again with a query string (which only Fastify takes:
 * same route, same handler), and the two replies must match byte for byte, headers included
 * (but Date).
 */

/** A reply as the client read it, its Date header left out (two requests differ there). */
export interface RawReply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** POSTs `body` (text as utf-8) to `path` on `url` over node:http, with Content-Length and `headers`. */
export function postRaw(
  url: string,
  path: string,
  headers: Record<string, string>,
  body: string | Buffer,
): Promise<RawReply> {
  return new Promise<RawReply>((resolve, reject) => {
    const call = request(
      new URL(path, url),
      {
        method: 'POST',
        headers: { 'content-length': String(Buffer.byteLength(body)), ...headers },
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => {
          const { date, ...rest } = response.headers
          void date
          resolve({ status: response.statusCode!, headers: rest, body: Buffer.concat(chunks) })
        })
      },
    )
    call.on('error', reject)
    call.end(body)
  })
}

/** Sends the request both ways; asserts the lean path took one and Fastify the other. */
export async function leanAndFastify(
  app: StartedApp,
  path: string,
  headers: Record<string, string>,
  body: string | Buffer,
): Promise<{ lean: RawReply; fastify: RawReply }> {
  const before = app.lean.served
  const lean = await postRaw(app.url, path, headers, body)
  assert.equal(app.lean.served, before + 1, 'the lean path answered')
  const fastify = await postRaw(app.url, `${path}?via=fastify`, headers, body)
  assert.equal(app.lean.served, before + 1, 'Fastify answered')
  return { lean, fastify }
}

/** Asserts the two replies alike: status, headers (Date aside) and body. */
export function assertSameReply(lean: RawReply, fastify: RawReply, name: string): void {
  assert.equal(lean.status, fastify.status, name)
  assert.deepEqual(lean.headers, fastify.headers, name)
  assert.equal(lean.body.toString(), fastify.body.toString(), name)
}

/**
 * An app listening on a free port with a manual clock at 2026-03-01T12:00:00.007Z: replies that
 * carry times are the same bytes both ways.
 */
export async function startFixedClockApp(
  t: TestContext,
  config: Partial<Config> = {},
): Promise<{ app: StartedApp; clock: ManualClock }> {
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 12, 0, 0, 7))
  const app = await startApp(t, { listen: true, clock, config })
  return { app, clock }
}

/**
 * The hooks Fastify runs on the first route whose printed line includes `route` (such as
 * `/v1/presence/users (POST)`), by hook name, as `printRoutes({ includeHooks: true })` lists them.
 */
export function routeHooks(app: FastifyInstance, route: string): Record<string, string[]> {
  const lines = app.printRoutes({ includeHooks: true, commonPrefix: false }).split('\n')
  // the tree prints a route under `/ (GET)` (the dashboard's redirect) without its leading slash
  const path = route.replace(/^\//, '')
  const at = lines.findIndex((line) => line.endsWith(`── ${path}`) || line.endsWith(`── /${path}`))
  assert.ok(at >= 0, route)
  const hooks: Record<string, string[]> = {}
  for (const line of lines.slice(at + 1)) {
    const match = /• \((\w+)\) (\[.*\])$/.exec(line)
    if (!match) break
    hooks[match[1]!] = (JSON.parse(match[2]!) as string[]).map((name) => name.replace('()', ''))
  }
  return hooks
}
