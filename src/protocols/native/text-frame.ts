/**
 * A server's WebSocket text frame (RFC 6455 §5.2) made of parts: `head + seq + tail`, where the
 * tail (`,"userId":…,"presence":{…}}`, a few hundred bytes) is the same for every watcher sent
 * the same view of a change and only the short head differs. The tail is encoded to UTF-8 once
 * for all of them (tailBytes); each socket gets a small buffer of its own, the frame header and
 * the head, then the shared tail. ws, sent the whole string, measures it, and the socket encodes
 * it again, for every socket.
 *
 * @example
 * const tail = tailBytes(frame.tail)
 * tcp.write(textFrameHead('{"type":"update","seq":', 7, tail.length))
 * tcp.write(tail)
 */

/** Tails encoded during the current fan-out, dropped after it (on the next tick). */
let encoded = new Map<string, Buffer>()
function forget(): void {
  encoded = new Map()
}

/** `tail` as UTF-8, encoded once for every socket that is sent it in the same tick. */
export function tailBytes(tail: string): Buffer {
  let bytes = encoded.get(tail)
  if (bytes === undefined) {
    if (encoded.size === 0) process.nextTick(forget)
    bytes = Buffer.from(tail)
    encoded.set(tail, bytes)
  }
  return bytes
}

/**
 * The frame header (FIN, text, not masked: a server's frame) of a payload of `head + seq` and
 * `tailLength` more bytes, followed by `head + seq`; `head` is ASCII (the frame's type and key).
 */
export function textFrameHead(head: string, seq: number, tailLength: number): Buffer {
  const text = head + seq
  const length = text.length + tailLength
  const size = length < 126 ? 2 : length < 65_536 ? 4 : 10
  const bytes = Buffer.allocUnsafe(size + text.length)
  bytes[0] = 0x81
  if (size === 2) {
    bytes[1] = length
  } else if (size === 4) {
    bytes[1] = 126
    bytes.writeUInt16BE(length, 2)
  } else {
    bytes[1] = 127
    bytes.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    bytes.writeUInt32BE(length >>> 0, 6)
  }
  bytes.write(text, size, 'latin1')
  return bytes
}
