import { isSaidWhereMet } from '../../core/errors.js'

/**
 * Warns that `what` failed, unless the failure is STORE_UNAVAILABLE or AUTH_UNAVAILABLE: Redis
 * unreachable or refusing is said by the store's StoreOutages, once with its reason and a
 * reminder a minute at most, a platform's JWKS that cannot be loaded by JwksKeys, once; never by
 * each request, stream or message that meets it (the log was flooded so).
 */
export function warnFailure(
  log: { warn(details: object, message: string): void } | undefined,
  error: unknown,
  what: string,
): void {
  if (!isSaidWhereMet(error)) log?.warn({ err: error }, what)
}
