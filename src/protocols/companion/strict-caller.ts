import type { FastifyRequest } from 'fastify'
import type { Caller } from '../../core/caller.js'
import { anonymous } from '../../core/privacy.js'
import type { Authenticator } from '../../service/authenticator.js'
import { robloxCredential } from '../roblox/auth.js'

/** Why a request's credential was refused, for the routes that need it valid. */
const refusals = new WeakMap<FastifyRequest, unknown>()

/**
 * Resolves the caller leniently, as `POST /v2/logout` needs (an invalid or revoked credential
 * reads as anonymous there: clients fetch their CSRF token that way), authenticating once per
 * request: the refusal is kept for `strictCaller`, so a guessed credential counts once against
 * its address. An address refused for guessing is refused here already (429), and so is a
 * token the platform's keys cannot tell now (503: it may be valid, so not anonymous).
 */
export async function lenientCaller(auth: Authenticator, request: FastifyRequest): Promise<Caller> {
  try {
    return await auth.authenticate(robloxCredential(request.headers), request.ip)
  } catch (error) {
    // refused for guessing, or a token that cannot be checked now (503): no anonymous caller
    const kind = (error as { kind?: unknown }).kind
    if (kind === 'rate_limited' || kind === 'unavailable') throw error
    refusals.set(request, error)
    return { kind: 'anonymous', viewer: anonymous }
  }
}

/** The request's caller as the strict routes see it: its credential's refusal is thrown. */
export function strictCaller(request: FastifyRequest): Caller {
  if (refusals.has(request)) throw refusals.get(request)
  return request.caller
}
