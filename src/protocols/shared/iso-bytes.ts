const DAY_MS = 86_400_000

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
  // below 86,400,000: int32 arithmetic from here
  const rest = (ms - day * DAY_MS) | 0
  const seconds = (rest / 1000) | 0
  const millis = rest - seconds * 1000
  const minutes = (seconds / 60) | 0
  const hours = (minutes / 60) | 0
  const sec = seconds - minutes * 60
  const min = minutes - hours * 60
  out[i++] = 0x30 + ((hours / 10) | 0)
  out[i++] = 0x30 + (hours % 10)
  out[i++] = 0x3a
  out[i++] = 0x30 + ((min / 10) | 0)
  out[i++] = 0x30 + (min % 10)
  out[i++] = 0x3a
  out[i++] = 0x30 + ((sec / 10) | 0)
  out[i++] = 0x30 + (sec % 10)
  out[i++] = 0x2e
  out[i++] = 0x30 + ((millis / 100) | 0)
  out[i++] = 0x30 + (((millis / 10) | 0) % 10)
  out[i++] = 0x30 + (millis % 10)
  if (zone) out[i++] = 0x5a
  return i
}
