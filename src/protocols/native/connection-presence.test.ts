import fc from 'fast-check'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserCaller } from '../../core/caller.js'
import { fail } from '../../core/errors.js'
import type { Activity } from '../../core/presence.js'
import type { UserId } from '../../core/user-id.js'
import type { PresenceService } from '../../service/presence-service.js'
import { ConnectionPresence } from './connection-presence.js'

/*
 * ConnectionPresence over random interleavings of heartbeat frames, keepalive refreshes, write
 * outcomes (written, refused by the budget, failed before or after writing) and the end, against
 * a fake service that records what the store holds. What must hold whatever the order:
 * - at most one write in flight; nothing is written once the end began;
 * - a refresh writes only what an admitted frame set; a refused frame writes nothing;
 * - after the end, the session is gone whenever any write may have landed;
 * - every frame refused or failed is told (`refused`), and only those.
 */

type Outcome = 'written' | 'refused' | 'failedBefore' | 'failedAfter'

const caller: UserCaller = {
  kind: 'user',
  userId: '7' as UserId,
  via: 'bearer',
  viewer: { kind: 'user', userId: '7' as UserId },
  tokenId: undefined,
  expiresAt: Number.MAX_SAFE_INTEGER,
  name: undefined,
}

interface Pending {
  counted: boolean
  location: string
  settle: (outcome: Outcome) => void
}

function harness() {
  const store = { session: undefined as string | undefined }
  const pending: Pending[] = []
  const admitted = new Set<string>()
  const log: string[] = []
  let ended = false
  const service = {
    limits: { heartbeat: () => ({ counted: true }) },
    beat(input: { activity: Activity }, admission?: unknown): Promise<unknown> {
      assert.equal(pending.length, 0, 'two writes in flight')
      assert.ok(!ended, 'a write after the end')
      const location = input.activity.location!
      return new Promise((resolve, reject) => {
        pending.push({
          counted: admission !== undefined,
          location,
          settle: (outcome) => {
            if (admission === undefined) {
              // a refresh: never counted, and only of what an admitted frame set
              assert.ok(admitted.has(location), `a refresh wrote ${location}, never admitted`)
              if (outcome === 'refused') outcome = 'written'
            }
            if (outcome === 'refused') {
              return reject(fail('RATE_LIMITED', 'Too many requests', { retryAfter: 0 }))
            }
            if (outcome === 'failedBefore') return reject(new Error('store down'))
            store.session = location
            if (admission !== undefined) admitted.add(location)
            if (outcome === 'failedAfter') return reject(new Error('bus down'))
            resolve({})
          },
        })
      })
    },
    endSession(): Promise<undefined> {
      ended = true
      store.session = undefined
      return Promise.resolve(undefined)
    },
  }
  return { store, pending, log, service: service as unknown as PresenceService }
}

const step = fc.oneof(
  fc.record({ op: fc.constant('frame' as const) }),
  fc.record({ op: fc.constant('refresh' as const) }),
  fc.record({
    op: fc.constant('settle' as const),
    outcome: fc.constantFrom<Outcome>('written', 'refused', 'failedBefore', 'failedAfter'),
  }),
  fc.record({ op: fc.constant('tick' as const) }),
)

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

test('ConnectionPresence: one write at a time, refusals write nothing, the end ends what may be written', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { maxLength: 30 }),
      fc.integer({ min: 0, max: 30 }),
      async (steps, endAt) => {
        const h = harness()
        let refusals = 0
        const presence = new ConnectionPresence(h.service, caller, '127.0.0.1', () => refusals++)
        let frames = 0
        let mayHaveWritten = false
        let failedFrames = 0
        let ending: Promise<void> | undefined
        const settle = async (outcome: Outcome) => {
          const write = h.pending.shift()
          if (!write) return
          if (write.counted && outcome !== 'refused' && outcome !== 'failedBefore') {
            mayHaveWritten = true
          }
          if (!write.counted && outcome !== 'failedBefore') mayHaveWritten = true
          if (write.counted && outcome !== 'written') failedFrames++
          write.settle(outcome)
          await tick()
        }
        for (let i = 0; i < steps.length; i++) {
          if (i === endAt) ending = presence.end('explicit')
          const s = steps[i]!
          if (s.op === 'frame') {
            presence.set('PC', { kind: 'online', location: `f${frames++}` })
          } else if (s.op === 'refresh') void presence.refresh().catch(() => {})
          else if (s.op === 'settle') await settle(s.outcome)
          else await tick()
        }
        ending ??= presence.end('explicit')
        // let every write in flight land, then the end
        while (h.pending.length > 0) await settle('written')
        await ending
        if (mayHaveWritten) assert.equal(h.store.session, undefined, 'the session outlived the end')
        // refusals wait 0 s here: none is answered without asking, each failed frame is told
        assert.equal(refusals, failedFrames)
      },
    ),
    { numRuns: 3000 },
  )
})
