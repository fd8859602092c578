import type { IncomingHttpHeaders } from 'node:http'
import type { TokenClaims, Tokens } from '../../service/tokens.js'
import { readCredential, type Credential } from '../roblox/auth.js'

/**
 * A companion-endpoint caller, resolved leniently: an invalid or revoked credential is kept as
 * such rather than refused at once, because `POST /v2/logout` must still hand such a client a
 * CSRF token (clients fetch it that way before anything else); each route decides.
 */
export interface CompanionCaller {
  credential: Credential
  /** The claims of a valid credential; undefined when there is none or it is invalid. */
  claims: TokenClaims | undefined
}

export async function resolveCaller(
  headers: IncomingHttpHeaders,
  tokens: Tokens,
): Promise<CompanionCaller> {
  const credential = readCredential(headers)
  if (credential.via === 'none') return { credential, claims: undefined }
  return { credential, claims: await tokens.verify(credential.token) }
}
