export const DAY_MS = 86_400_000

/** The date part (`YYYY-MM-DDT`) of the day last written, as bytes. */
let cachedDay = Number.NaN
const cachedDate = Buffer.alloc(11)

/**
 * Writes the ISO form of `ms` (a whole ms in years 1970-9999) at `at`: `YYYY-MM-DDTHH:MM:SS.mmm`
 * then `Z` when `zone`; returns the index after it. The caller makes room for 24 bytes.
 */
export function writeIsoBytes(out: Buffer, at: number, ms: number, zone: boolean): number {
  const day = Math.floor(ms / DAY_MS)
  if (day !== cachedDay) {
    cachedDay = day
    cachedDate.write(new Date(day * DAY_MS).toISOString().slice(0, 11), 0, 'latin1')
  }
  let i = at
  for (let k = 0; k < 11; k++) out[i++] = cachedDate[k]!
  writeIsoTime(out, i, ms - day * DAY_MS)
  i += 12
  if (zone) out[i++] = 0x5a
  return i
}

/**
 * Writes `HH:MM:SS.mmm`, the time of day of `msOfDay` (a whole ms, 0 to 86,399,999), in the 12
 * bytes from `at`; the `:` and `.` too.
 */
export function writeIsoTime(out: Uint8Array, at: number, msOfDay: number): void {
  // below 86,400,000: int32 arithmetic
  const rest = msOfDay | 0
  const seconds = (rest / 1000) | 0
  const millis = rest - seconds * 1000
  const minutes = (seconds / 60) | 0
  const hours = (minutes / 60) | 0
  const sec = seconds - minutes * 60
  const min = minutes - hours * 60
  out[at] = 0x30 + ((hours / 10) | 0)
  out[at + 1] = 0x30 + (hours % 10)
  out[at + 2] = 0x3a
  out[at + 3] = 0x30 + ((min / 10) | 0)
  out[at + 4] = 0x30 + (min % 10)
  out[at + 5] = 0x3a
  out[at + 6] = 0x30 + ((sec / 10) | 0)
  out[at + 7] = 0x30 + (sec % 10)
  out[at + 8] = 0x2e
  out[at + 9] = 0x30 + ((millis / 100) | 0)
  out[at + 10] = 0x30 + (((millis / 10) | 0) % 10)
  out[at + 11] = 0x30 + (millis % 10)
}
