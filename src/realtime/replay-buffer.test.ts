import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ReplayBuffer, SnapshotTail } from './replay-buffer.js'

test('replays exactly the frames after `since` while they are held', () => {
  const buffer = new ReplayBuffer(3)
  assert.equal(buffer.covers(0), true)
  assert.deepEqual(buffer.after(0), [])
  for (let seq = 1; seq <= 5; seq++) buffer.push(seq, { head: '{"seq":', tail: `,"n":${seq}}` })
  assert.equal(buffer.last, 5)
  assert.deepEqual(buffer.after(2), ['{"seq":3,"n":3}', '{"seq":4,"n":4}', '{"seq":5,"n":5}'])
  assert.deepEqual(buffer.after(5), [])
  assert.equal(buffer.covers(2), true)
  assert.equal(buffer.covers(1), false, 'frame 2 was overwritten')
  assert.equal(buffer.covers(6), false, 'a seq from the future is not ours')
  assert.equal(buffer.covers(-1), false)
  assert.equal(buffer.covers(2.5), false)
})

test('a zero-capacity buffer only resumes a client that missed nothing', () => {
  const buffer = new ReplayBuffer(0)
  buffer.push(1, { head: 'a', tail: 'b' })
  assert.equal(buffer.covers(1), true)
  assert.equal(buffer.covers(0), false)
})

test('a snapshot is a frame of its own, and one frame object serves every stream', () => {
  const shared = { head: '{"type":"update","seq":', tail: ',"n":1}' }
  const a = new ReplayBuffer(4)
  const b = new ReplayBuffer(4)
  a.push(1, new SnapshotTail('tok', ['{"u":1}', '{"u":2}'], ['p1', 'p2']))
  a.push(2, shared)
  b.push(1, shared)
  assert.deepEqual(a.after(0), [
    '{"type":"snapshot","seq":1,"resume":"tok","presences":[{"u":1},{"u":2}],"pos":["p1","p2"]}',
    '{"type":"update","seq":2,"n":1}',
  ])
  assert.deepEqual(b.after(0), ['{"type":"update","seq":1,"n":1}'])
})

test('a buffer grown a slot at a time replays every frame held, across its growth and its wrap', () => {
  // capacities that the doubling from one slot meets exactly, and ones it passes
  for (const capacity of [1, 2, 5, 8, 13, 256]) {
    const buffer = new ReplayBuffer(capacity)
    for (let seq = 1; seq <= 3 * capacity + 2; seq++) {
      buffer.push(seq, { head: '{"seq":', tail: `,"n":${seq}}` })
      const since = Math.max(0, seq - capacity)
      assert.equal(buffer.covers(since), true)
      assert.deepEqual(
        buffer.after(since),
        Array.from(
          { length: seq - since },
          (_, i) => `{"seq":${since + i + 1},"n":${since + i + 1}}`,
        ),
        `capacity ${capacity}, after frame ${seq}`,
      )
    }
  }
})
