import type { TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'

export interface XboxApp extends StartedApp {
  clock: ManualClock
  /** Headers of a well-formed Xbox request as `id`. */
  as(id: string): Promise<Record<string, string>>
  /** Writes `id`'s title presence; returns the response. */
  writeTitle(
    id: string,
    body: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<{ statusCode: number; headers: Record<string, unknown>; body: string }>
  /** `POST /users/batch` as `viewer`; returns status and parsed body. */
  batch(viewer: string, body: unknown): Promise<{ status: number; json: unknown }>
  get(viewer: string, path: string, headers?: Record<string, string>): Promise<unknown>
}

/** An app on a manual clock with write limits out of the way (tests of limits set their own). */
export async function startXbox(t: TestContext, config: Partial<Config> = {}): Promise<XboxApp> {
  const clock = new ManualClock()
  const started = await startApp(t, {
    clock,
    config: { xboxBurstMax: 10_000, xboxSustainMax: 10_000, ...config },
  })
  const tokens = new Map<string, string>()
  const as = async (id: string) => {
    let token = tokens.get(id)
    if (!token) {
      token = await started.tokens.issue(id as UserId)
      tokens.set(id, token)
    }
    return {
      authorization: `XBL3.0 x=${id.slice(0, 4)};${token}`,
      'x-xbl-contract-version': '3',
      accept: 'application/json',
    }
  }
  return {
    ...started,
    clock,
    as,
    async writeTitle(id, body, headers = {}) {
      const response = await started.app.inject({
        method: 'POST',
        url: `/users/xuid(${id})/devices/current/titles/current`,
        headers: { ...(await as(id)), ...headers },
        payload: body,
      })
      return { statusCode: response.statusCode, headers: response.headers, body: response.body }
    },
    async batch(viewer, body) {
      const response = await started.app.inject({
        method: 'POST',
        url: '/users/batch',
        headers: await as(viewer),
        payload: body as Record<string, unknown>,
      })
      return { status: response.statusCode, json: response.json() }
    },
    async get(viewer, path, headers = {}) {
      const response = await started.app.inject({
        method: 'GET',
        url: path,
        headers: { ...(await as(viewer)), ...headers },
      })
      if (response.statusCode !== 200) {
        throw new Error(`GET ${path}: ${response.statusCode} ${response.body}`)
      }
      return response.json()
    },
  }
}

export const T0 = new Date(Date.UTC(2026, 0, 1)).toISOString()

/** An instant as the Xbox documents' TitleRecord `timestamp` writes it (seven digits, no Z). */
export const seedTimestamp = (iso: string) => `${iso.slice(0, 23)}0000`
