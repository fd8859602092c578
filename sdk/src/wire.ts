/**
 * The wire formats the client speaks, defined once. Int64 ids arrive as JSON numbers; the
 * client parses bodies losslessly, so an id above 2^53 shows up here as a decimal string.
 */
export type WireId = number | string

/** Roblox presence v1: one record of `POST /v1/presence/users`. */
export interface RobloxUserPresence {
  userPresenceType: number
  lastLocation: string
  placeId: WireId | null
  rootPlaceId: WireId | null
  gameId: string | null
  universeId: WireId | null
  userId: WireId
  /** ISO-8601 UTC instant, always present. */
  lastOnline: string
}

export interface RobloxUserPresencesResponse {
  userPresences: RobloxUserPresence[]
}

export interface RobloxErrorResponse {
  errors: { code: number; message: string }[]
}

/** Xbox Live presence: `GET /users/...` and `POST /users/batch` records. */
export interface XboxPresenceRecordWire {
  xuid: string
  state: 'Online' | 'Away' | 'Offline'
  devices?: XboxDeviceRecordWire[]
  lastSeen?: {
    deviceType: string
    titleId: string
    titleName: string
    timestamp: string
  }
}

export interface XboxDeviceRecordWire {
  type: string
  titles?: XboxTitleRecordWire[]
}

export interface XboxTitleRecordWire {
  id: string
  name: string
  lastModified: string
  placement?: string
  state?: string
  activity?: { richPresence?: string }
}

/** The body of `POST /users/xuid(x)/devices/current/titles/current` (TitleRequest). */
export interface XboxTitleRequest {
  id?: string
  state: 'active' | 'inactive'
  placement?: 'full' | 'fill' | 'snapped' | 'background'
  activity?: {
    richPresence?: { id: string; scid: string; params?: string[] }
    media?: Record<string, unknown>
  }
}

export type XboxLevel = 'user' | 'device' | 'title' | 'all'

/**
 * An Xbox device type name as presenced spells it (known names in the Xbox way whatever the case
 * a writer used; `D` and `MCapensis` as XboxOne, `W8` as Windows8), `GameServer` for a game
 * server's report, or `Unknown` in a lastSeen without one. Other names are kept as written,
 * so any string may come: the names are listed for completion and checking, not as a limit.
 */
export type XboxDeviceType =
  | 'XboxOne'
  | 'Scarlett'
  | 'Xbox360'
  | 'PC'
  | 'Win32'
  | 'Windows8'
  | 'WindowsOneCore'
  | 'WindowsOneCoreMobile'
  | 'WindowsPhone'
  | 'WindowsPhone7'
  | 'MoLive'
  | 'iOS'
  | 'Android'
  | 'AppleTV'
  | 'Nintendo'
  | 'PlayStation'
  | 'Web'
  | 'GameServer'
  | 'Unknown'
  // any other string, without collapsing the names above into `string` for editors
  | (string & {})

/** The native API's states (docs/reference/native.md, "Presence"). */
export type NativeState = 'offline' | 'online' | 'inGame' | 'inStudio' | 'invisible'

/** A presence as the native API sends it (docs/reference/native.md, "Presence"). */
export interface NativePresence {
  userId: string
  state: NativeState
  /** ISO-8601; only while offline (an online user is online now), null when not known. */
  lastOnline: string | null
  locationHidden: boolean
  sessions: NativeSession[]
}

export interface NativeSession {
  source: 'app' | 'title' | 'server'
  /** Xbox device type names (XboxOne, Scarlett, PC, iOS, Android, Web, GameServer, ...). */
  deviceType: string
  activity: NativeActivity
}

/** What a session is doing; members appear when known (and when the viewer may see them). */
export interface NativeActivity {
  kind: 'online' | 'inGame' | 'inStudio'
  placeId?: string
  rootPlaceId?: string
  universeId?: string
  gameId?: string
  location?: string
  titleId?: string
  placement?: 'full' | 'fill' | 'snapped' | 'background'
  titleState?: 'active' | 'inactive'
  /** Xbox rich presence: a string id of the title's catalogue, with its parameters. */
  richPresence?: { id: string; scid?: string; params: string[] }
}

/**
 * The body of `POST /api/v1/realtime/sse` (docs/reference/native.md): the SSE stream of `GET`,
 * with what does not fit a URL. `positions: true` asks for `pos` in frames; a map of user id to
 * the last `pos` received continues the stream on any node.
 */
export interface NativeSseRequest {
  ids: WireId[]
  /** The stream's resume token; `since` is then required. */
  resume?: string
  /** The last `seq` received. */
  since?: number
  positions?: boolean | Record<string, string>
}
