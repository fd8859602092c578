const DAY_MS = 86_400_000
let cachedDay = Number.NaN
let cachedDate = ''

/**
 * `new Date(ms).toISOString()`, with the date part kept from the previous call's day: replies
 * write one timestamp per record, thousands per Xbox batch, and Date#toISOString was a
 * measurable share of a batch.
 */
export function isoOf(ms: number): string {
  // outside years 1970-9999 (or not a whole ms) the general path is exact
  if (!(ms >= 0 && ms < 253_402_300_800_000) || !Number.isInteger(ms)) {
    return new Date(ms).toISOString()
  }
  const day = Math.floor(ms / DAY_MS)
  if (day !== cachedDay) {
    cachedDay = day
    cachedDate = new Date(day * DAY_MS).toISOString().slice(0, 11)
  }
  let rest = ms - day * DAY_MS
  const millis = rest % 1000
  rest = (rest - millis) / 1000
  const seconds = rest % 60
  rest = (rest - seconds) / 60
  const minutes = rest % 60
  const hours = (rest - minutes) / 60
  return (
    cachedDate +
    (hours < 10 ? '0' : '') +
    hours +
    (minutes < 10 ? ':0' : ':') +
    minutes +
    (seconds < 10 ? ':0' : ':') +
    seconds +
    (millis < 10 ? '.00' : millis < 100 ? '.0' : '.') +
    millis +
    'Z'
  )
}
