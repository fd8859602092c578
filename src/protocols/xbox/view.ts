import type { Placement, Session, TitleState } from '../../core/presence.js'
import { shownWrite, type VisiblePresence } from '../../core/privacy.js'
import type { Title } from '../../core/catalogue.js'
import { isoOf } from '../shared/iso-date.js'
import { renderRichPresence } from './rich-presence.js'
import { deviceTypeKey } from './device-types.js'

/** How deep a PresenceRecord goes: user node only, + devices, + titles (default), + activity. */
export type XboxLevel = 'user' | 'device' | 'title' | 'all'
export const xboxLevels: readonly XboxLevel[] = ['user', 'device', 'title', 'all']

export type XboxUserState = 'Online' | 'Away' | 'Offline'

export interface ActivityRecord {
  /** Formatted and localized for the reader. */
  richPresence: string
}

export interface TitleRecord {
  id: string
  name: string
  /** ISO-8601 UTC instant of the title's last write. */
  lastModified: string
  /**
   * The same instant as the Xbox documents' TitleRecord sample writes it
   * (`2012-09-17T07:15:23.4930000`: UTC, seven fraction digits, no zone letter). The live
   * service and its clients use `lastModified`; both are sent.
   */
  timestamp: string
  placement: Placement
  state: TitleState
  /** Only at level `all`, and only when there is a string to show. */
  activity?: ActivityRecord
}

export interface DeviceRecord {
  type: string
  /** Absent at level `device`. */
  titles?: TitleRecord[]
}

/**
 * When the user was last seen. presenced keeps no history of which device or title that was:
 * `deviceType` is `Unknown` and `titleName` empty (and `titleId` absent), but both are present,
 * as clients require them (xbox-webapi-python's LastSeen model refuses a record without them).
 */
export interface LastSeenRecord {
  deviceType: string
  titleName: string
  timestamp: string
}

export interface PresenceRecord {
  xuid: string
  state: XboxUserState
  /** Absent at level `user` and when the user has no device the reader may see. */
  devices?: DeviceRecord[]
  /** Only when the user has no live device. */
  lastSeen?: LastSeenRecord
}

export interface XboxViewOptions {
  level: XboxLevel
  /** The reader's locales, best first (Accept-Language). */
  locales: readonly string[]
  /** Catalogue entries of the titles the sessions name; a title not in it has an empty name. */
  titles: ReadonlyMap<string, Title>
  /**
   * The title standing for the platform's own games: a session that is in a game or in the
   * studio without being an Xbox title write (a Roblox client or game server) shows as this
   * title, with the place name as its rich presence.
   */
  platformTitleId: string
  /** Device types to keep (OR), as `deviceTypeKey` gives them; empty or absent: all. */
  deviceTypes?: ReadonlySet<string>
  /** Title ids to keep (OR); empty or absent: all. */
  titleIds?: ReadonlySet<string>
}

interface FullDevice {
  type: string
  titles: TitleRecord[]
}

/**
 * Projects a presence, as privacy already shaped it for the reader (`VisiblePresence`), to an
 * Xbox PresenceRecord. No privacy decision is made here: a hidden user arrives without sessions
 * and shows Offline; with `locationHidden` the sessions arrive without their activity, so the
 * devices show with no titles (the titles' identity and activity are omitted).
 *
 * State: Online with at least one title (an Xbox title write, or a game or studio session),
 * Away when signed in with none (e.g. only a Roblox app session), else Offline.
 *
 * With `deviceTypes` or `titleIds`, only the matching devices and titles are kept, and a user
 * with none left is filtered out (undefined): the filters select the users to learn about.
 */
export function presenceRecord(
  presence: VisiblePresence,
  options: XboxViewOptions,
): PresenceRecord | undefined {
  const devices = new Map<string, FullDevice>()
  let inTitle = false
  for (const session of presence.sessions) {
    let device = devices.get(session.deviceType)
    if (!device) {
      device = { type: session.deviceType, titles: [] }
      devices.set(session.deviceType, device)
    }
    if (session.source === 'title' || session.activity.kind !== 'online') inTitle = true
    if (presence.locationHidden) continue
    const title = titleRecord(session, shownWrite(session, presence), options)
    if (title) device.titles.push(title)
  }

  let shown = [...devices.values()]
  const byDevice = options.deviceTypes !== undefined && options.deviceTypes.size > 0
  const byTitle = options.titleIds !== undefined && options.titleIds.size > 0
  if (byDevice) shown = shown.filter((d) => options.deviceTypes!.has(deviceTypeKey(d.type)))
  if (byTitle) {
    shown = shown
      .map((d) => ({ type: d.type, titles: d.titles.filter((t) => options.titleIds!.has(t.id)) }))
      .filter((d) => d.titles.length > 0)
  }
  if ((byDevice || byTitle) && shown.length === 0) return undefined

  const state: XboxUserState =
    presence.sessions.length === 0 ? 'Offline' : inTitle ? 'Online' : 'Away'
  const record: PresenceRecord = { xuid: presence.userId, state }
  if (options.level !== 'user' && shown.length > 0) {
    record.devices = shown.map((d) => deviceRecord(d, options.level))
  }
  if (presence.sessions.length === 0 && presence.lastOnline !== undefined) {
    record.lastSeen = { deviceType: 'Unknown', titleName: '', timestamp: iso(presence.lastOnline) }
  }
  return record
}

/** Every title id the sessions name (to fetch from the catalogue before projecting). */
export function titleIdsOf(
  presences: readonly VisiblePresence[],
  platformTitleId: string,
): Set<string> {
  const ids = new Set<string>()
  for (const presence of presences) {
    if (presence.locationHidden) continue
    for (const session of presence.sessions) {
      if (session.source === 'title' && session.activity.titleId) {
        ids.add(session.activity.titleId)
      } else if (session.activity.kind !== 'online') ids.add(platformTitleId)
    }
  }
  return ids
}

function deviceRecord(device: FullDevice, level: XboxLevel): DeviceRecord {
  if (level === 'device') return { type: device.type }
  if (level === 'all') return device
  return {
    type: device.type,
    titles: device.titles.map(({ id, name, lastModified, timestamp, placement, state }) => ({
      id,
      name,
      lastModified,
      timestamp,
      placement,
      state,
    })),
  }
}

function titleRecord(
  session: Session,
  written: number,
  options: XboxViewOptions,
): TitleRecord | undefined {
  const activity = session.activity
  let record: TitleRecord
  let richPresence: string | undefined
  if (session.source === 'title' && activity.titleId !== undefined) {
    const title = options.titles.get(activity.titleId)
    record = {
      id: activity.titleId,
      name: title?.name ?? '',
      lastModified: iso(written),
      timestamp: seedTimestamp(written),
      placement: activity.placement ?? 'full',
      state: activity.titleState ?? 'active',
    }
    if (options.level === 'all' && activity.richPresence) {
      richPresence = renderRichPresence(title, activity.richPresence, options.locales)
    }
  } else if (activity.kind !== 'online') {
    record = {
      id: options.platformTitleId,
      name: options.titles.get(options.platformTitleId)?.name ?? '',
      lastModified: iso(written),
      timestamp: seedTimestamp(written),
      placement: 'full',
      state: 'active',
    }
    if (options.level === 'all') richPresence = activity.location
  } else {
    return undefined
  }
  if (richPresence !== undefined && richPresence !== '') record.activity = { richPresence }
  return record
}

function iso(ms: number): string {
  return isoOf(ms)
}

/** `2012-09-17T07:15:23.4930000`: the ISO instant with seven fraction digits and no `Z`. */
function seedTimestamp(ms: number): string {
  return `${isoOf(ms).slice(0, 23)}0000`
}
