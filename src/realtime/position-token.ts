import { createCipheriv, createDecipheriv } from 'node:crypto'
import type { HistoryPosition } from './history.js'

const MAGIC = 0x7072

/**
 * A user's history position (epoch, offset) as the opaque 22-character token a subscriber holds
 * (`pos` in frames, `positions` in a resume). It is one AES-256 block under a key derived from
 * the token secret, so every node of a fleet reads it, and a subscriber learns nothing from it:
 * not how many changes a user made that it could not see (an invisible user's, a hidden place).
 * Tampering gains nothing either: a position only says where to replay from, privacy applies.
 */
export class PositionTokens {
  readonly #key: Buffer
  readonly #cache = new Map<string, string>()

  /** `key`: 32 bytes. */
  constructor(key: Buffer) {
    if (key.length !== 32) throw new RangeError('a position key is 32 bytes')
    this.#key = key
  }

  encode(position: HistoryPosition): string {
    const id = `${position.epoch} ${position.offset}`
    const known = this.#cache.get(id)
    if (known !== undefined) return known
    const block = Buffer.alloc(16)
    block.writeBigUInt64BE(position.epoch === '' ? 0n : BigInt(position.epoch), 0)
    block.writeUIntBE(position.offset, 8, 6)
    block.writeUInt16BE(MAGIC, 14)
    const cipher = createCipheriv('aes-256-ecb', this.#key, null).setAutoPadding(false)
    const token = Buffer.concat([cipher.update(block), cipher.final()]).toString('base64url')
    // the last few positions are asked again by each watcher of the same change
    if (this.#cache.size >= 1024) this.#cache.clear()
    this.#cache.set(id, token)
    return token
  }

  /** The position of a token, or undefined when it is not one of ours. */
  decode(token: string): HistoryPosition | undefined {
    const bytes = Buffer.from(token, 'base64url')
    if (bytes.length !== 16) return undefined
    const decipher = createDecipheriv('aes-256-ecb', this.#key, null).setAutoPadding(false)
    const block = Buffer.concat([decipher.update(bytes), decipher.final()])
    if (block.readUInt16BE(14) !== MAGIC) return undefined
    const epoch = block.readBigUInt64BE(0)
    return { epoch: epoch === 0n ? '' : String(epoch), offset: block.readUIntBE(8, 6) }
  }
}
