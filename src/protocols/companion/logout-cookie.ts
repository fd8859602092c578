import { isIP } from 'node:net'

/**
 * The `Set-Cookie` that makes a browser drop its `.ROBLOSECURITY` after a logout. Its `Domain` is
 * the parent of the host the client addressed (`auth.roblox.com` → `.roblox.com`, where the
 * cookie lives) and it is `Secure` when the client came over https. Both come from
 * `request.hostname` and `request.protocol`, which follow `X-Forwarded-Host`/`-Proto` only when
 * PRESENCED_TRUST_PROXY is set.
 */
export function clearCookieHeader(name: string, hostname: string, protocol: string): string {
  const parts = [`${name}=`, 'Max-Age=0', 'Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'Path=/']
  const domain = parentDomain(hostname)
  if (domain) parts.push(`Domain=${domain}`)
  if (protocol === 'https') parts.push('Secure')
  parts.push('HttpOnly', 'SameSite=Lax')
  return parts.join('; ')
}

/** `.b.c` for `a.b.c`; undefined for IP addresses, `localhost` and two-label names. */
export function parentDomain(hostname: string): string | undefined {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (host === '' || isIP(host) !== 0 || !/^[a-z0-9.-]+$/.test(host)) return undefined
  const labels = host.split('.').filter(Boolean)
  return labels.length >= 3 ? `.${labels.slice(1).join('.')}` : undefined
}
