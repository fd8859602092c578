import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Caller } from '../../core/caller.js'
import { noCredential, type Credential } from '../../service/authenticator.js'
import { bearerToken, isBlankHeader } from '../../service/bearer.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent the request, set by the owning protocol's onRequest hook. */
    caller: Caller
  }
  interface FastifyContextConfig {
    /** Only a user may call the route: its protocol's admission refuses any key as no user. */
    userOnly?: boolean
  }
}

/** One value of a header that may repeat. */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/**
 * `Authorization: Bearer <token>` as a credential; undefined without the header. A malformed
 * header is a present-but-invalid credential (an empty token), not anonymity.
 */
export function bearerCredential(headers: IncomingHttpHeaders): Credential | undefined {
  const authorization = headers.authorization
  if (authorization === undefined || isBlankHeader(authorization)) return undefined
  return { kind: 'token', token: bearerToken(authorization), via: 'bearer' }
}

/**
 * `Authorization` as it came, for the authenticator to read (bearerToken): undefined without
 * the header or with a blank one. The authenticator finds a token it remembers by the header
 * itself, with no pattern run over it.
 */
export function bearerHeaderCredential(headers: IncomingHttpHeaders): Credential | undefined {
  const authorization = headers.authorization
  if (authorization === undefined || isBlankHeader(authorization)) return undefined
  return { kind: 'bearer', header: authorization }
}

/**
 * The `Authorization` credential of a request, as `read` (bearerCredential or
 * bearerHeaderCredential) makes it from the headers; `several` when the header came more than
 * once. Node's parser keeps the first of repeated `Authorization` headers and drops the rest, so
 * a second token would otherwise go unchecked, as a key beside a token would (oneCredential).
 *
 * @example oneCredential([['Authorization', authorizationCredential(request)], …])
 */
export function authorizationCredential(
  request: { headers: IncomingHttpHeaders; raw: Pick<IncomingMessage, 'headersDistinct'> },
  read: (headers: IncomingHttpHeaders) => Credential | undefined = bearerCredential,
): Credential | undefined {
  // an injected request (light-my-request) has no headersDistinct: its headers are one each
  const sent = request.raw.headersDistinct?.authorization
  if (sent !== undefined && sent.length > 1) {
    return { kind: 'several', names: sent.map(() => 'Authorization') }
  }
  return read(request.headers)
}

/** `x-api-key: <secret>` as a credential; undefined without it. */
export function apiKeyCredential(headers: IncomingHttpHeaders): Credential | undefined {
  const key = headerValue(headers['x-api-key'])
  return typeof key === 'string' && key !== '' ? { kind: 'apiKey', secret: key } : undefined
}

/** The value of cookie `name` in a Cookie header (quotes and percent-encoding undone). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() !== name) continue
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1)
    }
    try {
      return decodeURIComponent(value)
    } catch {
      return value
    }
  }
  return undefined
}

/**
 * The one credential a request carries among `sent` (each under the name it came as; undefined:
 * not sent): `several` when it carries more than one, refused (400) rather than one of them
 * picked, since a second credential, wrong or another user's, would otherwise be silently
 * ignored; no credential when it carries none.
 *
 * @example oneCredential([['Authorization', bearer], ['x-api-key', undefined]]) // bearer
 */
export function oneCredential(
  sent: ReadonlyArray<readonly [name: string, credential: Credential | undefined]>,
): Credential {
  const present = sent.filter(([, credential]) => credential !== undefined)
  if (present.length > 1) return { kind: 'several', names: present.map(([name]) => name) }
  return present[0]?.[1] ?? noCredential
}
