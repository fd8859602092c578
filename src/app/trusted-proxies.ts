import type { IncomingMessage } from 'node:http'
import proxyAddr from '@fastify/proxy-addr'

/**
 * Who may speak for the client in `X-Forwarded-For/-Proto/-Host` (PRESENCED_TRUST_PROXY):
 * the `hops` nearest presenced (`1`: the front proxy it is connected to), or the peers at these
 * `addresses` (IPs, CIDR ranges, `loopback`, `linklocal`, `uniquelocal`).
 */
export type TrustedProxies = { hops: number } | { addresses: readonly string[] }

/** A hop (`address`, `i` hops from presenced, 0 the socket's peer) that may forward for others. */
export type TrustsHop = (address: string, i: number) => boolean

/**
 * The rule for Fastify's `trustProxy` and the lean routes alike. Trusting every hop (Fastify's
 * `true`) is never offered: a proxy that appends to `X-Forwarded-For`, as nginx's
 * `$proxy_add_x_forwarded_for` does, passes on whatever the client wrote first, so the client
 * would choose the address its rate limits and auth-failure budget are counted under.
 * Throws on an address that is none (to be said as a configuration error).
 */
export function trustsHop(trusted: TrustedProxies): TrustsHop {
  if ('hops' in trusted) {
    const hops = trusted.hops
    return (_address, i) => i < hops
  }
  return proxyAddr.compile([...trusted.addresses])
}

/** The client's address as `trusts` allows the proxies before presenced to tell it. */
export function forwardedClientAddress(request: IncomingMessage, trusts: TrustsHop): string {
  return proxyAddr(request, trusts)
}
