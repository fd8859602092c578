import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Polls `check` every 10 ms until it holds, for a signal that comes with no event to await (a
 * count another process raises, a log line); throws naming `what` past `timeoutMs`. Resolves
 * with the ms it took.
 */
export async function until(
  check: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
  return Date.now() - started
}
