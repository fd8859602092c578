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

/**
 * The commands of this process to the redis-server on `port` that `match` (their name and
 * arguments) and failed as timed out: when each was sent and when it failed
 * (`performance.now()`). What tells a deadline that did not grow from a batch that outlasted a
 * grown one, where the answer comes only once every step was tried. Undone when the test ends.
 */
export function timeouts(
  t: TestContext,
  port: number,
  matches: (name: string, args: readonly unknown[]) => boolean,
): Array<{ sent: number; at: number }> {
  const prototype = Redis.prototype as unknown as { sendCommand: Send }
  const original = prototype.sendCommand
  const timedOut: Array<{ sent: number; at: number }> = []
  prototype.sendCommand = function (this: Redis, command: Command, ...rest: unknown[]) {
    if (this.options.port === port && matches(command.name, command.args)) {
      const sent = performance.now()
      command.promise.catch((error: unknown) => {
        if (error instanceof Error && /timed out/i.test(error.message)) {
          timedOut.push({ sent, at: performance.now() })
        }
      })
    }
    return original.call(this, command, ...rest)
  }
  t.after(() => {
    prototype.sendCommand = original
  })
  return timedOut
}
