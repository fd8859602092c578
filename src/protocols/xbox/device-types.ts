import { badRequest } from './errors.js'

/** Device type names: XboxOne, Scarlett, PC, iOS, Android, Web, ... (unknown ones kept). */
export const DEVICE_TYPE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/

const knownDeviceTypes = [
  'Android',
  'AppleTV',
  'iOS',
  'MoLive',
  'Nintendo',
  'PC',
  'PlayStation',
  'Scarlett',
  'Web',
  'Win32',
  'Windows8',
  'WindowsOneCore',
  'WindowsOneCoreMobile',
  'WindowsPhone',
  'WindowsPhone7',
  'Xbox360',
  'XboxOne',
]
const canonicalDeviceType = new Map(knownDeviceTypes.map((t) => [t.toLowerCase(), t]))

/**
 * Other names of the same devices: the Xbox documents' samples write `D` (Durango, the Xbox One)
 * and `W8`, and the Xbox Live API (XSAPI) reads `MCapensis` as the Xbox One and `MoLive` as
 * Windows 8. Lower-cased alias → lower-cased name.
 */
const deviceTypeAliases = new Map([
  ['d', 'xboxone'],
  ['mcapensis', 'xboxone'],
  ['w8', 'windows8'],
  ['molive', 'windows8'],
])

/**
 * The key a device type is compared by in filters: lower-cased, aliases resolved, so that
 * `deviceTypes: ["D"]` finds an `XboxOne` device and `["W8"]` a `MoLive` one.
 */
export function deviceTypeKey(name: string): string {
  const lower = name.toLowerCase()
  return deviceTypeAliases.get(lower) ?? lower
}

/**
 * The device type a write comes from (`x-xbl-device-type`). Known names are spelled the Xbox
 * way whatever their case (MoLive stays MoLive), and `D`, `MCapensis` and `W8` are written as
 * the names they stand for (XboxOne, Windows8); unknown ones are kept as given; none means `Web`, as the Xbox
 * documentation says of callers without a device claim.
 */
export function parseDeviceType(header: string | string[] | undefined): string {
  if (header === undefined || header === '') return 'Web'
  if (typeof header !== 'string' || !DEVICE_TYPE.test(header)) {
    throw badRequest(`x-xbl-device-type must be a device type name such as XboxOne or PC.`)
  }
  const lower = header.toLowerCase()
  return canonicalDeviceType.get(lower) ?? canonicalDeviceType.get(deviceTypeKey(lower)) ?? header
}
