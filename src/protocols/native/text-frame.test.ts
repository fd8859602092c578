import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { test } from 'node:test'
import { tailBytes, textFrameHead } from './text-frame.js'

/** ws's own framing of a whole message, as `socket.send(string)` writes it on a server. */
const { Sender } = createRequire(import.meta.url)('ws') as {
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] }
}
const wsFrame = (text: string): Buffer =>
  Buffer.concat(
    Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false }),
  )

test("a frame made of parts has ws's bytes for the whole text, at every length encoding", () => {
  const head = '{"type":"update","seq":'
  for (const size of [10, 100, 103, 104, 300, 65_500, 65_536, 70_000]) {
    for (const filler of ['a', 'é', '😀']) {
      const tail = `,"presence":"${filler.repeat(size)}"}`
      for (const seq of [1, 99, 123_456_789]) {
        const bytes = tailBytes(tail)
        const parts = Buffer.concat([textFrameHead(head, seq, bytes.length), bytes])
        assert.deepEqual(parts, wsFrame(head + seq + tail), `${size} × ${filler}, seq ${seq}`)
      }
    }
  }
})

test('a tail is encoded once within a tick, and again after it', async () => {
  const tail = ',"userId":"7","presence":{}}'
  const first = tailBytes(tail)
  assert.equal(tailBytes(tail), first)
  assert.equal(tailBytes(`${tail} `.trimEnd()), first, 'the same text, another string')
  await new Promise((resolve) => setImmediate(resolve))
  const later = tailBytes(tail)
  assert.notEqual(later, first)
  assert.deepEqual(later, first)
})
