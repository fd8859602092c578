import { createHmac, timingSafeEqual } from 'node:crypto'

/** The headers of every delivery (lower case, as Node reads them). */
export const webhookHeaders = Object.freeze({
  eventId: 'x-presenced-event-id',
  webhookId: 'x-presenced-webhook-id',
  attempt: 'x-presenced-attempt',
  /** Unix seconds at which this attempt was signed. */
  timestamp: 'x-presenced-timestamp',
  /** `sha256=` + hex HMAC-SHA256 of `timestamp + "." + body`, keyed with the endpoint's secret. */
  signature: 'x-presenced-signature',
})

/**
 * The signature header value of one attempt.
 *
 * @example signWebhook('whsec_…', 1767225600, '{"id":"evt_…"}') // 'sha256=5d41…'
 */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

/**
 * What a receiver does (docs/reference/webhooks.md shows it standalone): recompute the signature
 * over the raw body, compare in constant time, and refuse a timestamp too far from now, so a
 * captured request cannot be replayed later.
 */
export function verifyWebhook(input: {
  secret: string
  body: string
  timestamp: string | undefined
  signature: string | undefined
  nowSeconds: number
  toleranceSeconds?: number
}): boolean {
  const { secret, body, timestamp, signature, nowSeconds } = input
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return false
  if (Math.abs(nowSeconds - Number(timestamp)) > (input.toleranceSeconds ?? 300)) return false
  const expected = Buffer.from(signWebhook(secret, Number(timestamp), body))
  const given = Buffer.from(signature)
  return given.length === expected.length && timingSafeEqual(given, expected)
}
