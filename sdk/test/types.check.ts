/**
 * Compile-time assertions on the public surface, checked by `tsc --noEmit` (npm run check).
 * Nothing here runs: a wrong type is a type error.
 */
import {
  createClient,
  PresenceType,
  PresencedError,
  type Presence,
  type PresenceEvent,
  type XboxPresence,
  type XboxDeviceType,
  type HeartbeatHandle,
  type TokenRefusedReason,
  type TokenRequest,
} from '@presenced/client'

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
type Expect<T extends true> = T

const client = createClient({ baseUrl: 'http://127.0.0.1:8080' })

// ids are never lossy numbers
export type UserIdIsString = Expect<Equal<Presence['userId'], string>>
export type PlaceIsObject = Expect<Equal<Presence['place'], { readonly id: string } | null>>
export type JobIsObject = Expect<Equal<Presence['job'], { readonly id: string } | null>>
export type LastOnlineIsDate = Expect<Equal<Presence['lastOnline'], Date>>
export type TypeIsEnum = Expect<Equal<Presence['type'], PresenceType>>
export type EnumValues = Expect<
  Equal<
    [typeof PresenceType.Offline, typeof PresenceType.InStudio],
    [PresenceType.Offline, PresenceType.InStudio]
  >
>

export const presences: Promise<Presence[]> = client.getUserPresences([1, '2', 3n, { id: 4 }])
void client.getUserPresences([1], { signal: AbortSignal.timeout(1000) })
// @ts-expect-error a signal, not a number of milliseconds
void client.getUserPresences([1], { signal: 1000 })
// @ts-expect-error a string is iterable, as its characters: not a list of ids
void client.getUserPresences('123')
void client.getUserPresences(new Set([1n, 2n]))
// @ts-expect-error one id goes in a list
client.subscribe(123)
// every call takes a signal: cloak (with or without an xuid), clearing a title, subscribe
void client.xbox.cloak(true, { signal: AbortSignal.timeout(1000) })
void client.xbox.cloak(false, '2533274790395904', { signal: AbortSignal.timeout(1000) })
void client.xbox.cloak(true, { xuid: 2533274790395904n })
void client.xbox.clearTitlePresence({ titleId: 1, signal: AbortSignal.timeout(1000) })
client.subscribe([1], { signal: AbortSignal.timeout(1000) }).close()
// @ts-expect-error a signal, not a number of milliseconds
void client.xbox.cloak(true, { signal: 1000 })
// @ts-expect-error a boolean is not an id
void client.getUserPresences([true])
// @ts-expect-error an object needs an id
void client.getUserPresences([{ name: 'x' }])

export const alive: HeartbeatHandle = client.keepAlive({ placeId: 1818, location: 'x' })
export type StopIsAsync = Expect<Equal<ReturnType<HeartbeatHandle['stop']>, Promise<void>>>

export const batch: Promise<XboxPresence[]> = client.xbox.batch({ users: ['1'], level: 'all' })
// @ts-expect-error not an Xbox level
void client.xbox.user('1', 'everything')
export type XboxState = Expect<Equal<XboxPresence['state'], 'Online' | 'Away' | 'Offline'>>

// events are a discriminated union: narrowing gives the right payload
export function describe(event: PresenceEvent): string {
  switch (event.type) {
    case 'snapshot':
      return String(event.presences.length) + String(event.reset)
    case 'offline':
      return event.reason + event.presence.userId
    case 'online':
    case 'update':
      // @ts-expect-error only offline events carry a reason
      return event.reason
  }
}

const sub = client.subscribe([1])
sub.on('offline', (event) => {
  const reason: 'explicit' | 'timeout' | 'node_lost' | 'privacy' | (string & {}) = event.reason
  // @ts-expect-error an offline event has no presences list
  void event.presences
  void reason
})
sub.on('update', (e) => {
  const p: Presence = e.presence
  void p
})
export async function iterate(): Promise<void> {
  for await (const event of sub) {
    const seq: number = event.seq
    void seq
  }
}

export function errorFields(error: PresencedError): [number, number | string | undefined] {
  return [error.status, error.code]
}

// why a token was refused: on the error, and told to a provider asked to refresh
export type RefusedReasons = Expect<Equal<TokenRefusedReason, 'expired' | 'invalid'>>
export type ErrorReason = Expect<Equal<PresencedError['reason'], TokenRefusedReason | undefined>>
export type ProviderReason = Expect<Equal<TokenRequest['reason'], TokenRefusedReason | undefined>>

// a token is a string or a provider of one: sync or async, its argument optional
createClient({ baseUrl: 'http://127.0.0.1:8080', token: 'a-token' })
createClient({ baseUrl: 'http://127.0.0.1:8080', token: () => 'a-token' })
createClient({
  baseUrl: 'http://127.0.0.1:8080',
  token: async ({ forceRefresh }) => (forceRefresh ? 'fresh' : 'cached'),
})
// @ts-expect-error a provider gives a string, not undefined
createClient({ baseUrl: 'http://127.0.0.1:8080', token: () => undefined })
export const maxIds: number = client.subscribe([1]).maxIds

// Xbox device types: the names complete and check, any other string still passes
export const scarlett: XboxDeviceType = 'Scarlett'
export const other: XboxDeviceType = 'SomeNewConsole'
export type DeviceTypeOfDevice = Expect<
  Equal<XboxPresence['devices'][number]['type'], XboxDeviceType>
>
void client.xbox.batch({ users: [1], deviceTypes: ['XboxOne', 'PC'] })
void client.xbox.setTitlePresence({ titleId: 1, deviceType: 'Scarlett' })
