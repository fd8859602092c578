import {
  createCipheriv,
  createDecipheriv,
  randomFillSync,
  type Cipher,
  type Decipher,
} from 'node:crypto'
import type { HistoryPosition } from './history.js'

const MAGIC = 0x7072
/** Random bytes per token: two tokens of one position are equal only by chance (2^-64). */
const NONCE_BYTES = 8
const TOKEN_BYTES = NONCE_BYTES + 16
/** Nonces are taken from a pool filled at once (a call for 8 bytes costs more than the AES). */
const POOL_BYTES = 4096
const HOUR = 3_600_000
/** Hours are kept modulo this (plus one: 0 is "not known"), about seven and a half years. */
const HOURS = 0xffff
/** The largest offset a token holds: an epoch of 4 billion changes of one user. */
const MAX_OFFSET = 0xffff_ffff

/** A position read from a token, with the hour it was issued in when the token says. */
export interface IssuedPosition extends HistoryPosition {
  /** The start of the hour (epoch ms) in which the token was issued. */
  issuedAt?: number
}

/**
 * A user's history position (epoch, offset) as the opaque 32-character token a subscriber holds
 * (`pos` in frames, `positions` in a resume). It is under a key derived from the token secret, so
 * every node of a fleet reads it, and a subscriber learns nothing from it: not how many changes a
 * user made that it could not see (an invisible user's, a hidden place), and not even whether the
 * position moved, since every token of a position is a new one: a nonce N, then the block
 * (epoch 8 bytes, issue hour 2, offset 4, magic 2) XORed with E(N) and encrypted (one AES-256
 * block each). Tampering gains nothing either: a changed nonce or block decodes to a wrong magic,
 * and a position only says where to replay from, privacy applies. The issue hour lets a resume
 * answer for a user hidden from the subscriber as it would for an offline user (fanout.ts
 * `#hiddenSince`); tokens of earlier versions (offset in 6 bytes) read with no hour.
 */
export class PositionTokens {
  /** ECB without padding: one block in, one block out, so one cipher serves every token. */
  readonly #cipher: Cipher
  readonly #decipher: Decipher
  readonly #pool = Buffer.alloc(POOL_BYTES)
  #used = POOL_BYTES

  /** `key`: 32 bytes. */
  constructor(key: Buffer) {
    if (key.length !== 32) throw new RangeError('a position key is 32 bytes')
    this.#cipher = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false)
    this.#decipher = createDecipheriv('aes-256-ecb', key, null).setAutoPadding(false)
  }

  /** `at`: when the token is issued (epoch ms); without it, the token holds no issue hour. */
  encode(position: HistoryPosition, at?: number): string {
    const token = Buffer.alloc(TOKEN_BYTES)
    if (this.#used === POOL_BYTES) {
      randomFillSync(this.#pool)
      this.#used = 0
    }
    this.#pool.copy(token, 0, this.#used, (this.#used += NONCE_BYTES))
    const block = this.#mask(token)
    xorBigUInt64(block, 0, position.epoch === '' ? 0n : BigInt(position.epoch))
    if (at !== undefined) xorUInt(block, 8, 2, (Math.floor(at / HOUR) % HOURS) + 1)
    xorUInt(block, 10, 4, position.offset % (MAX_OFFSET + 1))
    // an offset beyond what a token holds makes a token that is not ours: a resume from it resets
    xorUInt(block, 14, 2, position.offset > MAX_OFFSET ? MAGIC ^ 1 : MAGIC)
    this.#cipher.update(block).copy(token, NONCE_BYTES)
    return token.toString('base64url')
  }

  /**
   * The position of a token, or undefined when it is not one of ours; `now` places the issue
   * hour (the latest hour at or before it with the token's hour number).
   */
  decode(token: string, now = Date.now()): IssuedPosition | undefined {
    const bytes = Buffer.from(token, 'base64url')
    if (bytes.length !== TOKEN_BYTES) return undefined
    const block = this.#decipher.update(bytes.subarray(NONCE_BYTES))
    const mask = this.#mask(bytes)
    for (let i = 0; i < 16; i++) block[i]! ^= mask[i]!
    if (block.readUInt16BE(14) !== MAGIC) return undefined
    const epoch = block.readBigUInt64BE(0)
    const position = { epoch: epoch === 0n ? '' : String(epoch), offset: block.readUInt32BE(10) }
    const hour = block.readUInt16BE(8)
    if (hour === 0) return position
    const current = Math.floor(now / HOUR)
    const back = ((((current % HOURS) - (hour - 1)) % HOURS) + HOURS) % HOURS
    return { ...position, issuedAt: (current - back) * HOUR }
  }

  /** E(nonce ‖ 0…0): the mask of a token's block. */
  #mask(token: Buffer): Buffer {
    const input = Buffer.alloc(16)
    token.copy(input, 0, 0, NONCE_BYTES)
    return this.#cipher.update(input)
  }
}

function xorBigUInt64(block: Buffer, at: number, value: bigint): void {
  block.writeBigUInt64BE(block.readBigUInt64BE(at) ^ value, at)
}

function xorUInt(block: Buffer, at: number, bytes: number, value: number): void {
  for (let i = bytes - 1; i >= 0; i--) {
    block[at + i]! ^= value % 256
    value = Math.floor(value / 256)
  }
}
