import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Caller } from '../core/caller.js'
import { fail, type PresenceError } from '../core/errors.js'
import type { PresenceChange } from '../store/presence-store.js'
import { MemoryRateLimiter } from '../store/memory/memory-rate-limiter.js'
import { verdictOf, type RateLimitHit } from '../store/rate-limiter.js'
import { ManualClock } from './clock.js'
import type { RequestAdmission } from './admission.js'
import { RateLimits } from './rate-limits.js'

const settings = {
  requestMax: 2,
  requestWindowMs: 60_000,
  titleBurstMax: 3,
  titleSustainMax: 30,
  xboxReadBurstMax: 30,
  xboxReadSustainMax: 300,
}
const change = { userId: '1' } as PresenceChange
const caller: Caller = { kind: 'anonymous', viewer: { kind: 'anonymous' } }

function setup() {
  const limiter = new MemoryRateLimiter()
  const limits = new RateLimits(limiter, new ManualClock(), settings)
  const writes: string[] = []
  const write = (how: string) => async () => {
    writes.push(how)
    return change
  }
  return { limits, writes, write }
}

const codeOf = (error: unknown) => (error as PresenceError).code

/** admitWith as a promise, whether it answered at once or not. */
async function admitted(
  admission: RequestAdmission,
  ...args: Parameters<RequestAdmission['admitWith']>
): Promise<PresenceChange> {
  return admission.admitWith(...args)
}

test('a write counts its hit in its own step; a refused one writes nothing', async () => {
  const { limits, writes } = setup()
  // a store's limited step, counting in the limiter's budget as a fleet store does in its script
  const counts = new Map<string, number>()
  const limited = (hit: RateLimitHit) => {
    const count = (counts.get(hit.key) ?? 0) + 1
    counts.set(hit.key, count)
    const verdict = verdictOf(hit.rules, [count], 0)
    if (!verdict.allowed) return Promise.resolve({ refused: verdict })
    writes.push('limited')
    return Promise.resolve({ change })
  }
  const admission = () => limits.admission(limits.requestHit(caller, '10.0.0.1'))
  for (let i = 0; i < 2; i++) {
    assert.equal(await admitted(admission(), limited, async () => assert.fail()), change)
  }
  const refused = admission()
  await assert.rejects(
    admitted(refused, limited, async () => assert.fail()),
    (error) => {
      assert.equal(codeOf(error), 'RATE_LIMITED')
      return true
    },
  )
  assert.deepEqual(writes, ['limited', 'limited'])
  // the write's refusal is the admission's: it wins over the request's own error
  assert.equal(codeOf(await refused.refusalOr(new Error('later'))), 'RATE_LIMITED')
})

test('without a limited step the hit runs first; the checks refuse before anything is written', async () => {
  const { limits, writes, write } = setup()
  const none = () => undefined
  const csrf = () => {
    throw fail('CSRF_INVALID', 'Token Validation Failed')
  }
  const hit = () => limits.requestHit(caller, '10.0.0.2')
  // a check refuses: its 403, the hit counted all the same, nothing written
  await assert.rejects(admitted(limits.admission(hit(), csrf), none, write('csrf')), (error) => {
    assert.equal(codeOf(error), 'CSRF_INVALID')
    return true
  })
  const ok = limits.admission(hit())
  assert.equal(await admitted(ok, none, write('second')), change)
  assert.equal(await ok.refusalOr('later'), 'later', 'admitted: the request answers its own error')
  // the budget of 2 is spent: the limit's 429 comes before the check's 403
  await assert.rejects(admitted(limits.admission(hit(), csrf), none, write('third')), (error) => {
    assert.equal(codeOf(error), 'RATE_LIMITED')
    return true
  })
  const unrun = limits.admission(hit())
  assert.equal(codeOf(await unrun.refusalOr(new Error('bad body'))), 'RATE_LIMITED')
  assert.deepEqual(writes, ['second'])
})

test('a limited step done at once is answered at once: its change, or its refusal thrown and kept', async () => {
  const { limits } = setup()
  const memory = new MemoryRateLimiter()
  // an embedded store's step: counted and written in the same tick, no promise
  const limited = (hit: RateLimitHit) => {
    const verdict = memory.hitNow(hit.key, hit.rules, 0)
    return verdict.allowed ? { change } : { refused: verdict }
  }
  const admission = () => limits.admission(limits.requestHit(caller, '10.0.0.3'))
  for (let i = 0; i < 2; i++) {
    const first = admission()
    assert.equal(
      first.admitWith(limited, async () => assert.fail()),
      change,
    )
    assert.equal(await first.refusalOr('later'), 'later')
  }
  const refused = admission()
  assert.throws(
    () => refused.admitWith(limited, async () => assert.fail()),
    (error) => codeOf(error) === 'RATE_LIMITED',
  )
  // the refusal is the admission's outcome too, and wins over the request's own error
  assert.equal(codeOf(await refused.refusalOr(new Error('later'))), 'RATE_LIMITED')
  await assert.rejects(refused.run(), (error) => codeOf(error) === 'RATE_LIMITED')
})
