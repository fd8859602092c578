import { ADMIN_KEY } from './start-app.js'

/**
 * A request to a listening node's admin API with `key` (the tests' admin key unless given): its
 * status and body text.
 */
export async function adminFetch(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  key = ADMIN_KEY,
): Promise<{ status: number; text: string }> {
  const response = await fetch(base + path, {
    method,
    headers: {
      'x-api-key': key,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })
  return { status: response.status, text: await response.text() }
}
