import { isStoreUnavailable } from '../../core/errors.js'

/**
 * Warns that `what` failed, unless the failure is STORE_UNAVAILABLE: Redis unreachable or
 * refusing is said by the store's StoreOutages, once with its reason and a reminder a minute at
 * most, never by each request, stream or message that meets it (the log was flooded so).
 */
export function warnFailure(
  log: { warn(details: object, message: string): void } | undefined,
  error: unknown,
  what: string,
): void {
  if (!isStoreUnavailable(error)) log?.warn({ err: error }, what)
}
