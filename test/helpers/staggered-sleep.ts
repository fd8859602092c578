/**
 * A sleep for the SDK's backoff waits that honours their signal: the first wait is short, every
 * later one long, so one batch runs out of attempts while its siblings are still waiting.
 */
export function staggeredSleep(firstMs: number, laterMs: number) {
  let calls = 0
  return (_ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const timer = setTimeout(resolve, calls++ === 0 ? firstMs : laterMs)
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer)
          reject(signal.reason)
        },
        { once: true },
      )
    })
}
