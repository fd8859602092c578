import { isIPv4 } from 'node:net'
import ipaddr from 'ipaddr.js'

/**
 * The client a request's address stands for, as the per-address budgets count it (the rate
 * limits of anonymous callers, the limit on guessed credentials): an IPv6 client by its /64,
 * which one host or subscriber commonly holds whole (2^64 addresses, each with a budget of its
 * own, would make a limit no limit), an IPv4-mapped one (`::ffff:a.b.c.d`) as its IPv4 address,
 * an IPv4 client by its address. Anything else is counted as it is; a result stands for itself.
 *
 * @example
 * clientOf('2001:db8:1:2:aaaa::1') // '2001:db8:1:2::/64'
 * clientOf('::ffff:203.0.113.7') // '203.0.113.7'
 */
export function clientOf(address: string): string {
  // IPv4 (most requests, an anonymous read's hot path): as it is, nothing parsed
  if (!address.includes(':')) return address
  // what a dual-stack listener (HOST=::) reports for every IPv4 client
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) return address.slice(7)
  // parsing an IPv6 address costs ~4 µs, and a client sends many requests from one address;
  // nothing longer than an address (at most 45 characters, a zone aside) is kept
  if (address.length > 64) return groupOf(address)
  let client = recent.get(address)
  if (client === undefined) {
    if (recent.size >= RECENT_MAX) recent.clear()
    recent.set(address, (client = groupOf(address)))
  }
  return client
}

/** IPv6 addresses recently grouped; cleared whole when full (an old entry is merely parsed again). */
const recent = new Map<string, string>()
const RECENT_MAX = 10_000

function groupOf(address: string): string {
  if (!ipaddr.isValid(address)) return address
  const parsed = ipaddr.parse(address)
  if (parsed.kind() === 'ipv4') return parsed.toString()
  const v6 = parsed as ipaddr.IPv6
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString()
  return `${v6.parts
    .slice(0, 4)
    .map((part) => part.toString(16))
    .join(':')}::/64`
}
