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

const DATE_TIME_FIELDS = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):/
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/**
 * The instant an ISO-8601 date-time names (`2030-01-01T00:00:00Z`, with an offset or a fraction),
 * or undefined. Date.parse alone rolls an impossible day over (February 30th is March 2nd) and
 * reads 24:00 as the next day's midnight: an instant a client did not mean.
 */
export function parseIsoInstant(text: string): number | undefined {
  const fields = DATE_TIME_FIELDS.exec(text)
  if (!fields) return undefined
  const ms = Date.parse(text)
  if (Number.isNaN(ms)) return undefined
  const [year, month, day, hour] = fields.slice(1).map(Number) as [number, number, number, number]
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const days = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!
  return day <= days && hour <= 23 ? ms : undefined
}
