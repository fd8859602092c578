import type { TestContext } from 'node:test'
import { Command, Redis } from 'ioredis'

type Send = (this: Redis, command: Command, ...rest: unknown[]) => unknown

/**
 * Pauses every client of the redis-server on `port` for `ms` (`CLIENT PAUSE <ms> ALL`) right
 * before the first command of this process to it that `matches` (its name and arguments): sent on
 * the same connection just ahead of it, so the commands before are answered at once and that one
 * and every later one wait `ms` at least, however loaded the machine (Redis ends the pause itself).
 * Its `at`: when the pause was sent (`performance.now()`), undefined until then. Undone when the
 * test ends.
 */
export function pauseBefore(
  t: TestContext,
  port: number,
  matches: (name: string, args: readonly unknown[]) => boolean,
  ms: number,
): { at?: number } {
  const prototype = Redis.prototype as unknown as { sendCommand: Send }
  const original = prototype.sendCommand
  const paused: { at?: number } = {}
  let armed = true
  prototype.sendCommand = function (this: Redis, command: Command, ...rest: unknown[]) {
    if (armed && this.options.port === port && matches(command.name, command.args)) {
      armed = false
      const pause = new Command('client', ['PAUSE', String(ms), 'ALL'], { replyEncoding: 'utf8' })
      void pause.promise.catch(() => undefined)
      original.call(this, pause)
      paused.at = performance.now()
    }
    return original.call(this, command, ...rest)
  }
  t.after(() => {
    prototype.sendCommand = original
  })
  return paused
}
