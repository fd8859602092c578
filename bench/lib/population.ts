/**
 * The users every HTTP bench reads, defined once: presenced loads them through its service, the
 * naive servers build their Maps from the same functions, so all three servers can answer with
 * the same bytes (the benches check that before timing anything).
 *
 * User i (1..users) has one live app session on the Web: every third user is Online on the
 * website, the others InGame in one of 500 catalogued places. User i's heartbeat happened at
 * `lastOnlineOf(at, users, i)`: one millisecond apart, the last one at `at`.
 */

export const PLACES = 500
export const GAME_ID = '6f1c1b4e-2f7a-4f5e-9a57-1e2d3c4b5a69'
export const DEVICE_TYPE = 'Web'
/** The Xbox title standing for the platform's games, as the bench server catalogues it. */
export const PLATFORM_TITLE_NAME = 'Roblox'
/** The signed-in viewer: outside 1..users, so it never reads itself. */
export const VIEWER_ID = '9000000000'
/** A signed-in reader with no relations (the Xbox bench's caller). */
export const STRANGER_ID = '9000000001'
export const NEVER_ONLINE = '1970-01-01T00:00:00.000Z'

export interface Place {
  placeId: string
  universeId: string
  name: string
}

export function placeOf(p: number): Place {
  return { placeId: String(1_000_000 + p), universeId: String(2_000_000 + p), name: `Place ${p}` }
}

export function isInGame(user: number): boolean {
  return user % 3 !== 0
}

export function placeOfUser(user: number): Place {
  return placeOf(user % PLACES)
}

export function lastOnlineOf(at: number, users: number, user: number): number {
  return at - (users - user)
}

/** Ids spread evenly over 1..users, starting at `offset` within each stride. */
function spread(users: number, count: number, offset: number): number[] {
  const stride = Math.floor(users / count)
  return Array.from({ length: count }, (_, k) => 1 + k * stride + (offset % stride))
}

/** The viewer's friends (mutual). */
export function friendsOf(users: number, count: number): number[] {
  return spread(users, count, 7)
}

/** Users the viewer blocked: they show Offline to the viewer, and never a friend. */
export function blockedOf(users: number, count: number): number[] {
  return spread(users, count, 11)
}
