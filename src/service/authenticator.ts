import { createHash, timingSafeEqual } from 'node:crypto'
import { hasScope, isScope } from '../core/api-key.js'
import {
  OPERATOR_KEY_ID,
  type AnonymousCaller,
  type Caller,
  type KeyCaller,
  type TokenChannel,
  type UserCaller,
} from '../core/caller.js'
import { PresenceError, errors, fail } from '../core/errors.js'
import { anonymous, type Scope } from '../core/privacy.js'
import type { ApiKeys } from './api-keys.js'
import type { AuthFailures } from './auth-failures.js'
import type { Clock } from './clock.js'
import { CsrfTokens, anonymousSubject } from './csrf.js'
import type { Revocations } from './revocations.js'
import { bearerToken } from './bearer.js'
import type { TokenClaims, TokenRefusal, Tokens } from './tokens.js'

/** A credential as a protocol read it off the wire. */
export type Credential =
  | { kind: 'none' }
  | { kind: 'token'; token: string; via: TokenChannel }
  /**
   * An `Authorization` header as it came (not blank), read here (bearerToken): a token it
   * remembers is found by the header itself, with no pattern run over it.
   */
  | { kind: 'bearer'; header: string }
  | { kind: 'apiKey'; secret: string }
  /**
   * A credential header no issued credential can produce (`XBL3.0` without `x=<hash>;<token>`,
   * say): refused with `message` (401), and counted as a guess as a forged token is.
   */
  | { kind: 'malformed'; message: string }
  /**
   * More than one credential on one request (a Bearer header and `?access_token=`, say):
   * refused as a bad request (400), whatever each would prove, as RFC 6750 asks of a token
   * sent more than one way. `names` says which were sent, for the message.
   */
  | { kind: 'several'; names: readonly string[] }

export const noCredential: Credential = Object.freeze({ kind: 'none' })

/** What lives on a user's token (a real-time connection): ended when the token is revoked. */
export interface Revocable {
  revoked(): void
}

const anonymousCaller: AnonymousCaller = Object.freeze({ kind: 'anonymous', viewer: anonymous })

const DENIED = 'Authorization has been denied for this request.'

/** What a request does, for its CSRF check (Authenticator.checkCsrf). */
export type CsrfAction = 'read' | 'write'

/**
 * Every credential presenced accepts, checked in one place: access tokens (cookie, Bearer,
 * XBL3.0, `?access_token=`), scoped API keys and the operator's admin key (`x-api-key`). A
 * credential that is present but invalid, expired or revoked is refused (401), never downgraded
 * to anonymous: the client learns at once that it must sign in again. Protocols read the
 * credential off their wire, call `authenticate` with the client's address, and render its
 * errors in their own shape.
 *
 * Guessing is limited here too (AuthFailures): a credential that is no issued one (an unknown
 * key, a bad signature, a malformed token) counts against its client address, and an address
 * past the limit has every credential refused (429), right ones too, until its window ends. A
 * genuine credential refused because it expired or was revoked does not count: clients send
 * those routinely (a refresh, a logout on another device) and cannot forge them anyway.
 *
 * @example
 * const caller = await auth.authenticate({ kind: 'token', token, via: 'bearer' }, request.ip)
 * auth.requireScope(caller, 'presence:write') // throws API_KEY_MISSING / SCOPE_MISSING
 */
export class Authenticator {
  readonly #tokens: Tokens
  readonly #keys: ApiKeys
  readonly #revocations: Revocations
  readonly #clock: Clock
  readonly #adminDigest: Buffer | undefined
  /** The keys /metrics accepts (the metrics key, the admin key), as digests. */
  readonly #metricsDigests: readonly Buffer[]
  readonly #failures: AuthFailures
  readonly #csrf: CsrfTokens
  /** token id → what lives on that token now (see `hold`): one holder, or several */
  readonly #held = new Map<string, Revocable | Revocable[]>()

  constructor(deps: {
    tokens: Tokens
    keys: ApiKeys
    revocations: Revocations
    clock: Clock
    adminKey: string | undefined
    /** The key /metrics requires besides the admin key; neither turns /metrics off. */
    metricsKey?: string | undefined
    failures: AuthFailures
  }) {
    this.#tokens = deps.tokens
    this.#keys = deps.keys
    this.#revocations = deps.revocations
    this.#clock = deps.clock
    this.#adminDigest = deps.adminKey ? digest(deps.adminKey) : undefined
    this.#metricsDigests = [deps.metricsKey, deps.adminKey]
      .filter((key): key is string => Boolean(key))
      .map(digest)
    this.#failures = deps.failures
    this.#csrf = new CsrfTokens(deps.tokens)
    deps.revocations.onRevoked((tokenId) => {
      const held = this.#held.get(tokenId)
      if (held === undefined) return
      this.#held.delete(tokenId)
      for (const holder of Array.isArray(held) ? held : [held]) holder.revoked()
    })
  }

  /**
   * Ties `holder` (a real-time connection) to the token `tokenId` it was opened with: a
   * revocation of that token, made on any node, ends it at once, as it refuses the token's next
   * request. A token revoked already ends it now; a token without an id (a platform's, without
   * `jti`) cannot be revoked. `release` when the holder ends on its own.
   */
  hold(tokenId: string | undefined, holder: Revocable): void {
    if (tokenId === undefined) return
    if (this.#revocations.has(tokenId)) return holder.revoked()
    // most tokens open one connection: the holder itself, an array only for several
    const held = this.#held.get(tokenId)
    if (held === undefined) this.#held.set(tokenId, holder)
    else if (Array.isArray(held)) held.push(holder)
    else this.#held.set(tokenId, [held, holder])
  }

  release(tokenId: string | undefined, holder: Revocable): void {
    if (tokenId === undefined) return
    const held = this.#held.get(tokenId)
    if (held === holder) return void this.#held.delete(tokenId)
    if (!Array.isArray(held)) return
    const at = held.indexOf(holder)
    if (at >= 0) held.splice(at, 1)
    if (held.length === 0) this.#held.delete(tokenId)
  }

  /** Whether the operator turned the admin API on (an admin key is configured). */
  get adminEnabled(): boolean {
    return this.#adminDigest !== undefined
  }

  /**
   * The caller `credential` proves, sent from client `address` (`request.ip`: the address the
   * rate limits see, the front proxy's X-Forwarded-For when it is trusted). Throws 401 for a
   * credential present but invalid, 429 while `address` is refused for guessing (see above),
   * 503 AUTH_UNAVAILABLE for a platform's token its keys, which cannot be loaded, cannot tell.
   */
  authenticate(credential: Credential, address: string): Promise<Caller> {
    // not async: an async function returning #user's promise resolves its own with it, two more
    // microtask turns on every request; each case hands back its promise as it is
    switch (credential.kind) {
      case 'none':
        return Promise.resolve(anonymousCaller)
      case 'token':
        return this.#user(credential.token, credential.via, address)
      case 'bearer':
        return this.#bearer(credential.header, address)
      case 'apiKey':
        return this.#key(credential.secret, address)
      case 'malformed':
        return this.#malformed(credential.message, address)
      case 'several':
        return Promise.reject(
          fail(
            'INVALID_REQUEST',
            `Send one credential, not several: this request carries ${credential.names.join(', ')}.`,
          ),
        )
    }
  }

  /**
   * authenticate(), answered without a promise when nothing is to be waited for: a Bearer token
   * verified already (remembered, not revoked), or none (anonymous); its refusal is then thrown.
   * For the hot paths (the lean register-app-presence and users routes): the async layer and
   * the promise resolved with the caller cost a request microtask turns and `then` lookups
   * (issue 19). Anything else as authenticate() answers it.
   */
  authenticateNow(credential: Credential, address: string): Caller | Promise<Caller> {
    if (credential.kind === 'none') return anonymousCaller
    if (credential.kind !== 'bearer') return this.authenticate(credential, address)
    this.#failures.check(address)
    const claims = this.#tokens.rememberedBearer(credential.header)
    if (claims === undefined) return this.#verifyBearer(credential.header, address)
    return this.#callerOf(claims, 'bearer')
  }

  async #malformed(message: string, address: string): Promise<never> {
    this.#failures.check(address)
    await this.#failures.count(address)
    throw fail('UNAUTHENTICATED', message, { tokenRefused: 'invalid' })
  }

  /** Whether /metrics is on: a metrics key or the admin key is configured. */
  get metricsEnabled(): boolean {
    return this.#metricsDigests.length > 0
  }

  /**
   * Whether `secret` opens /metrics: the metrics key or the admin key (compared as digests in
   * constant time), or a live API key with the `admin` scope, which opens everything the admin
   * key does on the admin API (the admin stats, which count hidden users too). A live key
   * without it is a 403 SCOPE_MISSING, as on every route; an unknown secret counts as a guess
   * from `address`, as anywhere else (a revoked or expired key does not), and is false. A user's
   * token (Prometheus sends a bearer token, and so does a user's client) is false too, but no
   * guess: it was issued, for the other routes, as an expired one was. Several credentials (a
   * Bearer key and an `x-api-key`) are refused (400), as on every route, rather than one read.
   */
  async allowsMetrics(credential: Credential, address: string): Promise<boolean> {
    // several: refused (400) there, as on every route
    if (credential.kind === 'several') await this.authenticate(credential, address)
    const secret =
      credential.kind === 'token'
        ? credential.token
        : credential.kind === 'apiKey'
          ? credential.secret
          : ''
    if (secret === '') return false
    this.#failures.check(address)
    const given = digest(secret)
    if (this.#metricsDigests.some((known) => timingSafeEqual(known, given))) return true
    const record = await this.#keys.check(secret)
    if (typeof record === 'string') {
      // a key revoked or expired was issued once: no guess; nor is a token presenced signed
      if (record === 'unknown' && !(await this.#isIssuedToken(secret))) {
        await this.#failures.count(address)
      }
      return false
    }
    this.requireScope(keyCaller(record.id, record.scopes.filter(isScope), []), 'admin')
    return true
  }

  /**
   * Whether `secret` is a token presenced (or the platform) signed, valid or not any more: its
   * refusal `stale`, a revoked one, or `unavailable` (the platform's keys out of reach cannot tell
   * a guess, as #user does not count it either).
   */
  async #isIssuedToken(secret: string): Promise<boolean> {
    const claims = this.#tokens.remembered(secret) ?? (await this.#tokens.check(secret))
    return claims !== 'forged'
  }

  /**
   * The caller as a user: 401 for no credential, 403 for a valid API key (it authenticated, but
   * a key is no user, and sending it again will not change that). Every route that needs a user
   * asks here, so the answer is the same in every protocol.
   */
  requireUser(caller: Caller): UserCaller {
    if (caller.kind === 'user') return caller
    if (caller.kind === 'key') {
      throw fail(
        'USER_REQUIRED',
        "This route needs a user's token: an API key is not a user. Send Authorization: Bearer <token>.",
      )
    }
    throw fail('UNAUTHENTICATED', DENIED)
  }

  /** The caller as a key holding one of `scopes` (the first is named when none is held). */
  requireScope(caller: Caller, ...scopes: [Scope, ...Scope[]]): KeyCaller {
    if (caller.kind !== 'key') {
      throw fail(
        'API_KEY_MISSING',
        `Send an API key with the ${scopes[0]} scope in the x-api-key header.`,
      )
    }
    if (!scopes.some((scope) => hasScope(caller, scope))) {
      throw fail(
        'SCOPE_MISSING',
        `This API key lacks the required scope: ${scopes[0]}. Verify your API key has the required scopes.`,
      )
    }
    return caller
  }

  /**
   * Whether `credential` still gives `scope` now: false for a key revoked or expired since it
   * was first checked, and undefined while its store cannot be read (the store cannot tell:
   * nothing may be sent on it meanwhile, and it is asked again later; a Redis outage is no
   * revocation). A long-lived stream opened with a key asks before each delivery, so a
   * revocation takes effect at once there too.
   */
  async stillAllows(credential: Credential, scope: Scope): Promise<boolean | undefined> {
    if (
      credential.kind === 'none' ||
      credential.kind === 'malformed' ||
      credential.kind === 'several'
    ) {
      return false
    }
    try {
      // a check of a credential admitted before: neither counted nor refused as a guess
      const caller =
        credential.kind === 'token'
          ? await this.#user(credential.token, credential.via, undefined)
          : credential.kind === 'bearer'
            ? await this.#bearer(credential.header, undefined)
            : await this.#key(credential.secret, undefined)
      this.requireScope(caller, scope)
      return true
    } catch (error) {
      return error instanceof PresenceError && error.kind === 'unavailable' ? undefined : false
    }
  }

  /** A reader of presence: anyone, but a key must hold a read scope. */
  requireReader(caller: Caller): Caller {
    if (caller.kind === 'key') this.requireScope(caller, 'presence:read', 'presence:read:private')
    return caller
  }

  /**
   * The caller of a route that only a user may call, checked where a reader's would be: a key is
   * refused as no user (requireUser's 403) whatever its scopes, not for a read scope that would
   * not let it in either. Anyone else goes on to the route, whose requireUser has the last word.
   */
  requireNoKey(caller: Caller): Caller {
    return caller.kind === 'key' ? this.requireUser(caller) : caller
  }

  /**
   * Checks the CSRF token of a state-changing request by a cookie caller (a cross-site page can
   * make the browser send the cookie, never a header it cannot read), else throws 403 with a
   * fresh token bound to the caller. A user's token is bound to that user only: one issued to
   * an anonymous caller, or to another user, never authorizes a signed-in user's write.
   *
   * A `read` changes nothing, and its reply is unreadable cross-site (no CORS): it needs no
   * token, as Roblox's read takes a cookie without one (roboat sends none, and does not retry a
   * 403). A token that is sent is still checked, so a client holding a wrong one gets the 403
   * and a fresh token as for a write.
   */
  checkCsrf(
    caller: Caller,
    address: string,
    token: string | undefined,
    action: CsrfAction = 'write',
  ): void {
    if (action === 'read' && token === undefined) return
    const now = this.#clock.now()
    const subject = caller.kind === 'user' ? caller.userId : anonymousSubject(address)
    if (this.#csrf.verify(subject, token, now)) return
    throw fail('CSRF_INVALID', 'Token Validation Failed', {
      csrfToken: this.#csrf.issue(subject, now),
    })
  }

  /** Ends the caller's login: its token is refused from now on, on every node. */
  async logout(caller: UserCaller): Promise<void> {
    if (caller.tokenId === undefined) {
      throw fail('INVALID_REQUEST', 'This token has no id (jti) and cannot be revoked.')
    }
    // kept exactly as long as the token could be valid: every accepted token has an expiry
    await this.#revocations.revoke(caller.tokenId, caller.expiresAt)
  }

  /** `address` undefined: a recheck, which AuthFailures neither refuses nor counts. */
  async #user(token: string, via: TokenChannel, address: string | undefined): Promise<UserCaller> {
    if (address !== undefined) this.#failures.check(address)
    const claims = this.#tokens.remembered(token) ?? (await this.#tokens.check(token))
    if (typeof claims === 'string') return this.#refuse(claims, address)
    return this.#callerOf(claims, via)
  }

  /** #user for an Authorization header: a remembered token found by the header as it came. */
  async #bearer(header: string, address: string | undefined): Promise<UserCaller> {
    if (address !== undefined) this.#failures.check(address)
    const claims =
      this.#tokens.rememberedBearer(header) ?? (await this.#tokens.check(bearerToken(header)))
    if (typeof claims === 'string') return this.#refuse(claims, address)
    return this.#callerOf(claims, 'bearer')
  }

  /** #bearer for a header whose token is not remembered, `address` checked already. */
  async #verifyBearer(header: string, address: string): Promise<UserCaller> {
    const claims = await this.#tokens.check(bearerToken(header))
    if (typeof claims === 'string') return this.#refuse(claims, address)
    return this.#callerOf(claims, 'bearer')
  }

  /**
   * A token's refusal, counted as a guess from `address` when it is forged. A token the
   * platform's keys cannot tell (they cannot be loaded) is no refusal of the token: 503
   * AUTH_UNAVAILABLE with Retry-After, in every protocol's own shape, so that a client keeps its
   * token (a 401 would make it refresh, or sign its user out, for a fault of the server's side).
   */
  async #refuse(refusal: TokenRefusal, address: string | undefined): Promise<never> {
    if (refusal === 'unavailable')
      throw errors.authUnavailable(this.#tokens.unavailableRetryAfter())
    // an expired token is no guess
    if (refusal === 'forged' && address !== undefined) await this.#failures.count(address)
    // the client learns expired (a fresh token will do) or invalid (it will not), never which
    // check failed
    const tokenRefused = refusal === 'expired' ? 'expired' : 'invalid'
    throw fail('UNAUTHENTICATED', DENIED, { tokenRefused })
  }

  /**
   * The caller of a token's claims, unless its token was revoked. Not async: the caller's own
   * async function answers it, with no promise resolved by another promise.
   */
  #callerOf(claims: TokenClaims, via: TokenChannel): UserCaller {
    if (claims.jti !== undefined && this.#revocations.has(claims.jti)) {
      // revoked: a fresh token is not what the client needs, a new sign-in is
      throw fail('UNAUTHENTICATED', DENIED, { tokenRefused: 'invalid' })
    }
    return {
      kind: 'user',
      userId: claims.userId,
      via,
      viewer: { kind: 'user', userId: claims.userId },
      tokenId: claims.jti,
      expiresAt: claims.exp * 1000,
      name: claims.name,
    }
  }

  async #key(secret: string, address: string | undefined): Promise<KeyCaller> {
    if (address !== undefined) this.#failures.check(address)
    // compare digests: equal lengths, and no early exit that would time the key's prefix
    if (this.#adminDigest && timingSafeEqual(digest(secret), this.#adminDigest)) {
      return keyCaller(OPERATOR_KEY_ID, ['admin'], [])
    }
    const record = await this.#keys.check(secret)
    if (typeof record === 'string') {
      // a key revoked or expired was issued once: no guess
      if (record === 'unknown' && address !== undefined) await this.#failures.count(address)
      throw fail('API_KEY_INVALID', 'The x-api-key is unknown, expired or revoked.')
    }
    return keyCaller(record.id, record.scopes.filter(isScope), record.universes, record.expiresAt)
  }
}

function keyCaller(
  keyId: string,
  scopes: Scope[],
  universes: readonly string[],
  expiresAt?: number,
): KeyCaller {
  return {
    kind: 'key',
    keyId,
    scopes,
    universes,
    expiresAt,
    viewer: { kind: 'service', keyId, scopes },
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
