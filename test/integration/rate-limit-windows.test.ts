import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startXbox } from './xbox-helpers.js'

const ME = '2533274790395904'
const TITLE = '1717113201'

// Issue 15, item 10: with one Roblox request a second in the background, the embedded limiter
// forgot the title's 300 s sustain window after 120 s and let 60 of 60 writes through.
test('a title keeps its 300 s write limit while Roblox reads come every second', async (t) => {
  const x = await startXbox(t, { xboxBurstMax: 3, xboxSustainMax: 30 })
  const statuses: number[] = []
  for (let s = 0; s < 300; s++) {
    const read = await x.app.inject({
      method: 'POST',
      url: '/v1/presence/users',
      headers: { 'content-type': 'application/json' },
      payload: '{"userIds":[1]}',
    })
    assert.equal(read.statusCode, 200)
    if (s % 5 === 0) statuses.push((await x.writeTitle(ME, { id: TITLE })).statusCode)
    x.clock.advance(1000)
  }
  assert.equal(statuses.filter((s) => s === 200).length, 30)
  assert.equal(statuses.filter((s) => s === 429).length, 30)
  // the window is over: writes are welcome again
  assert.equal((await x.writeTitle(ME, { id: TITLE })).statusCode, 200)
})
