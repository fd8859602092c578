/**
 * Runs `work` over every item with at most `concurrency` in flight, results in input order.
 * The first failure rejects the whole: items not yet started are skipped, and the signal given
 * to `work` is aborted (with that failure as its reason), so the items in flight stop too (their
 * requests and backoff waits) rather than go on asking after the caller has its error. Aborting
 * `signal` aborts every item the same way.
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  signal?.throwIfAborted()
  const results = new Array<R>(items.length)
  const controller = new AbortController()
  const onAbort = () => controller.abort(signal?.reason)
  signal?.addEventListener('abort', onAbort, { once: true })
  let next = 0
  const worker = async () => {
    while (!controller.signal.aborted && next < items.length) {
      const index = next++
      try {
        results[index] = await work(items[index] as T, index, controller.signal)
      } catch (error) {
        controller.abort(error)
        throw error
      }
    }
  }
  const workers = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker)
  try {
    await Promise.all(workers)
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
  return results
}
