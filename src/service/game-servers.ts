import { mayWriteUniverse } from '../core/api-key.js'
import type { KeyCaller } from '../core/caller.js'
import { fail, type ErrorCode } from '../core/errors.js'
import { canonicalGameId } from '../core/game-id.js'
import type { Activity, PresenceChange } from '../core/presence.js'
import type { VisiblePresence, Viewer } from '../core/privacy.js'
import { parseInt64Id, parseUserId, type UserId } from '../core/user-id.js'
import type { CatalogueStore } from '../store/catalogue-store.js'
import {
  serverSessionKey,
  ServerUniverseRefused,
  type PresenceStore,
  type ServerReport,
  type ServerRoster,
} from '../store/presence-store.js'
import type { Clock } from './clock.js'

/** Players one report may list: a server bigger than this must not exist; 10,001 is refused. */
export const MAX_PLAYERS_PER_REPORT = 10_000

/** The device type of server-reported sessions: the server does not know its players' devices. */
export const SERVER_DEVICE_TYPE = 'GameServer'

/** A report as received: every field is checked here, whatever the transport did. */
export interface ServerReportInput {
  placeId: unknown
  universeId?: unknown
  players: unknown
}

/** The writer of a report: a key whose scope the Authenticator checked; its universes here. */
export type ServerWriter = Pick<KeyCaller, 'keyId' | 'universes'>

export interface GameServersDeps {
  presence: PresenceStore
  catalogue: CatalogueStore
  clock: Clock
  sessionTtlMs: number
  /** Hands applied changes to the service (bus, metrics), with how many players reported. */
  applied(changes: readonly PresenceChange[], players: number): Promise<void>
  /** The presences of `ids` as `viewer` may see them. */
  lookup(viewer: Viewer, ids: readonly UserId[]): Promise<VisiblePresence[]>
  /** Spends the request budget of key `keyId` for server `gameId` (RateLimits.gameServer). */
  spend(keyId: string, gameId: string): Promise<void>
}

export interface ReportOutcome {
  gameId: string
  universeId: string | undefined
  players: number
  /** Players who came online on this server with this report. */
  joined: number
  /** Players of the previous report who are gone. */
  left: number
  expiresAt: number
}

const bad = (code: ErrorCode, message: string) => fail(code, message)

/**
 * Game servers report the full set of players connected to them; each player then has one
 * session `server:<gameId>` (InGame there) that lives as long as the server keeps reporting.
 * A report is checked whole before anything is written, so bad input never half-applies.
 *
 * @example
 * await service.servers.report(keyCaller, '7a4e…', { placeId: '1818', players: ['1', '2'] })
 */
export class GameServers {
  readonly #deps: GameServersDeps

  constructor(deps: GameServersDeps) {
    this.#deps = deps
  }

  /** The canonical (lower-case) server instance id, or a 400. */
  parseGameId(raw: string): string {
    const gameId = canonicalGameId(raw)
    if (gameId === undefined) {
      throw bad(
        'GAME_ID_INVALID',
        `Invalid gameId ${JSON.stringify(raw.slice(0, 60))}: it must be the server instance's uuid.`,
      )
    }
    return gameId
  }

  /**
   * Admits one request of a game server, before its body is read: a 400 for a `gameId` that is
   * no uuid (never counted: a budget per canonical server id), else one request of the key's
   * budget for that server, a RATE_LIMITED refusal (429, Retry-After) past it.
   */
  async admit(key: Pick<KeyCaller, 'keyId'>, rawGameId: string): Promise<void> {
    await this.#deps.spend(key.keyId, this.parseGameId(rawGameId))
  }

  /**
   * Applies a report (PUT semantics): 400 for bad input, 403 for a universe the key may not
   * write. A key limited to universes reports only places of the catalogue in its universes: a
   * place the catalogue does not know has no universe but the one the body names, which nothing
   * checks. A game server id belongs to the universe of its live roster: a key that may not write
   * that universe may not replace the roster either, whatever universe it names.
   */
  async report(writer: ServerWriter, rawGameId: string, input: ServerReportInput) {
    const gameId = this.parseGameId(rawGameId)
    const { activity, catalogued } = await this.#activity(gameId, input)
    if (!catalogued && writer.universes.length > 0) {
      throw fail(
        'UNIVERSE_FORBIDDEN',
        `This API key may only write presence for places of its universes, and place ${activity.placeId} is not in the places catalogue: register the place first.`,
      )
    }
    this.#mayWrite(writer, activity.universeId)
    const players = parsePlayers(input.players)
    const { presence, clock, sessionTtlMs } = this.#deps
    const now = clock.now()
    const report: ServerReport = {
      gameId,
      players,
      activity,
      deviceType: SERVER_DEVICE_TYPE,
      ttlMs: sessionTtlMs,
    }
    // whose the live roster is, checked by the store in the step that replaces it: a read made
    // before let a report of another universe land in between, and be replaced
    if (writer.universes.length > 0) report.universes = writer.universes
    const changes = await this.#refusedAs(writer, presence.reportServer(report, now))
    await this.#deps.applied(changes, players.length)
    const left = changes.filter((c) => c.ended !== undefined).length
    const key = serverSessionKey(gameId)
    const joined = changes.filter(
      (c) => c.ended === undefined && !c.before.sessions.some((s) => s.key === key),
    ).length
    return {
      gameId,
      universeId: activity.universeId,
      players: players.length,
      joined,
      left,
      expiresAt: now + sessionTtlMs,
    } satisfies ReportOutcome
  }

  /** Ends the server and its players' sessions (shutdown); the number of players it had. */
  async end(writer: ServerWriter, rawGameId: string): Promise<{ gameId: string; ended: number }> {
    const gameId = this.parseGameId(rawGameId)
    const { presence, clock } = this.#deps
    // whose the roster is, checked by the store on the roster it ends (see report)
    const universes = writer.universes.length > 0 ? writer.universes : undefined
    const changes = await this.#refusedAs(
      writer,
      presence.endServer(gameId, clock.now(), 'explicit', universes),
    )
    await this.#deps.applied(changes, 0)
    return { gameId, ended: changes.length }
  }

  /**
   * The roster as `viewer` may see it: a player is listed only where the viewer may know where
   * that player is (privacy as on every other read: invisible, hidden location and blocked
   * players are left out). A 404 when unknown or past its expiry (the server is lost).
   */
  async roster(viewer: Viewer, rawGameId: string): Promise<ServerRoster> {
    const gameId = this.parseGameId(rawGameId)
    const roster = await this.#deps.presence.getServer(gameId, this.#deps.clock.now())
    if (!roster) {
      throw fail(
        'SERVER_NOT_FOUND',
        `No live game server ${gameId}: it never reported, was ended, or stopped reporting.`,
      )
    }
    const key = serverSessionKey(gameId)
    const visible = await this.#deps.lookup(viewer, roster.players)
    const players = roster.players.filter((_, i) => {
      const seen = visible[i]!
      return !seen.locationHidden && seen.sessions.some((s) => s.key === key)
    })
    return { ...roster, players }
  }

  /** `write`'s changes; its refusal by the store (ServerUniverseRefused) as `#mayWrite` says it. */
  async #refusedAs(
    writer: ServerWriter,
    write: Promise<PresenceChange[]>,
  ): Promise<PresenceChange[]> {
    try {
      return await write
    } catch (error) {
      if (error instanceof ServerUniverseRefused) this.#mayWrite(writer, error.universeId)
      throw error
    }
  }

  #mayWrite(writer: ServerWriter, universeId: string | undefined): void {
    if (mayWriteUniverse(writer, universeId)) return
    throw fail(
      'UNIVERSE_FORBIDDEN',
      universeId === undefined
        ? 'This API key may only write presence for its universes, and this server has no known universe.'
        : `This API key may not write presence for universe ${universeId}.`,
    )
  }

  /**
   * The players' activity: the place, with universe, root place and name from the catalogue;
   * `catalogued` when the catalogue knows the place.
   */
  async #activity(
    gameId: string,
    input: ServerReportInput,
  ): Promise<{ activity: Activity; catalogued: boolean }> {
    const placeId = parseInt64Id(input.placeId)
    if (placeId === undefined) {
      throw bad('PLACE_ID_INVALID', 'placeId is required: a positive 64-bit integer.')
    }
    let universeId: string | undefined
    if (input.universeId !== undefined) {
      universeId = parseInt64Id(input.universeId)
      if (universeId === undefined) {
        throw bad('UNIVERSE_ID_INVALID', 'universeId must be a positive 64-bit integer.')
      }
    }
    const place = await this.#deps.catalogue.getPlace(placeId)
    if (place && universeId !== undefined && place.universeId !== universeId) {
      throw bad(
        'UNIVERSE_MISMATCH',
        `Place ${placeId} belongs to universe ${place.universeId}, not ${universeId}.`,
      )
    }
    // built in one key order, so equal activities serialize equally (the stores compare them)
    const activity: Activity = { kind: 'inGame', placeId }
    const rootPlaceId = place?.rootPlaceId
    universeId ??= place?.universeId
    if (rootPlaceId !== undefined) activity.rootPlaceId = rootPlaceId
    if (universeId !== undefined) activity.universeId = universeId
    activity.gameId = gameId
    if (place) activity.location = place.name
    return { activity, catalogued: place !== undefined }
  }
}

/** Every id checked before anything is written: invalid, duplicate or too many refuse it all. */
export function parsePlayers(raw: unknown): UserId[] {
  if (!Array.isArray(raw)) throw bad('PLAYERS_INVALID', 'players must be an array of user ids.')
  if (raw.length > MAX_PLAYERS_PER_REPORT) {
    throw bad(
      'TOO_MANY_PLAYERS',
      `A report lists at most ${MAX_PLAYERS_PER_REPORT} players; this one has ${raw.length}.`,
    )
  }
  const players = new Array<UserId>(raw.length)
  const seen = new Set<string>()
  for (let i = 0; i < raw.length; i++) {
    const id = parseUserId(raw[i])
    if (id === undefined) {
      throw bad(
        'USER_ID_INVALID',
        `players[${i}] is ${JSON.stringify(String(raw[i])).slice(0, 60)}: user ids are positive 64-bit integers.`,
      )
    }
    if (seen.has(id)) throw bad('PLAYER_DUPLICATE', `players lists user ${id} twice.`)
    seen.add(id)
    players[i] = id
  }
  return players
}
