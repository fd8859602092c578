/**
 * Runs `effect` for each item in order, each whatever became of those before it, then throws the
 * first failure: the effects of changes already stored (telling watchers and webhooks) must not
 * be skipped because another one's failed, while the caller still learns of it.
 *
 * @example await eachSettled(changes, (change) => publish(change))
 */
export async function eachSettled<T>(
  items: Iterable<T>,
  effect: (item: T) => Promise<void>,
): Promise<void> {
  let failed: { error: unknown } | undefined
  for (const item of items) {
    try {
      await effect(item)
    } catch (error) {
      failed ??= { error }
    }
  }
  if (failed) throw failed.error
}
