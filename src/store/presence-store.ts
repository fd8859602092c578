import { mayWriteUniverse } from '../core/api-key.js'
import type {
  Activity,
  InheritedField,
  OfflineReason,
  PresenceChange,
  Session,
  SessionSource,
  UserPresence,
} from '../core/presence.js'
import type { PresenceSummary, UserSettings } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import type { PrivacyStore } from './privacy-store.js'
import type { RateLimitHit, RateLimitVerdict, RateLimiter, TitleBudget } from './rate-limiter.js'

export type { PresenceChange }
export { sweepReason } from '../core/presence.js'

/**
 * The live sessions a user holds at most, by default (PRESENCED_MAX_SESSIONS). A write that
 * would start one more ends first the user's live session that expires first (the one beaten
 * least recently), in the same atomic step: a client naming a new device, platform, title or
 * game server at each write cannot grow one user's presence (and every read of it) without bound.
 */
export const MAX_SESSIONS_PER_USER = 32

/** One heartbeat: creates the session or refreshes it, moving expiresAt to now + ttlMs. */
export interface SessionWrite {
  userId: UserId
  /** Identifies the session among the user's: e.g. `app:iOS`, `title:1234:XboxOne`, `server:<gameId>`. */
  key: string
  source: SessionSource
  deviceType: string
  activity: Activity
  ttlMs: number
  /**
   * Members of `activity` the write leaves out: each takes the value the live session with the
   * same key has, if it has one, and `activity`'s own (a default, or absent) otherwise
   * (core `inheritActivity`). Taken in the write's own step, so nothing needs reading first
   * (an Xbox title write is one Redis round trip) and no write in between is lost.
   */
  inherit?: readonly InheritedField[]
  /**
   * The writer reads nothing of the change when it is a refresh (the live session with the
   * same key, source, device type and activity: only its expiry and update time move). A store
   * may then answer it with `before` the very object `after` is (the user's state after the
   * write), without making the state before: isRefresh tells it as a refresh all the same, so
   * the history, the bus and the webhooks hear nothing of it, as of any refresh. A change that
   * is not a refresh is answered whole. (The memory store does; the Redis store answers every
   * write whole.)
   */
  refreshUnread?: boolean
}

/** What a limited write did: its change, or the refusing verdict (nothing written). */
export type LimitedWrite = { change: PresenceChange } | { refused: RateLimitVerdict }

/**
 * An end of a user's Xbox title sessions on one device (DELETE of title presence): the live
 * session of `titleId` there (key `title:<titleId>:<deviceType>`), or when `titleId` is
 * undefined every live title session (source `title`) of that device, whatever it runs.
 */
export interface TitleEnd {
  userId: UserId
  deviceType: string
  titleId?: string
  reason: OfflineReason
}

/**
 * What an end of titles did: the titles it found and counted (the named one if the device runs
 * it, else those it found, in the user's session order; none: the idle title was counted) and
 * one change per session ended, each from the one before, in order.
 */
export interface TitlesEnded {
  titleIds: string[]
  changes: PresenceChange[]
}

/** What a limited end of titles did, or the refusing verdict (nothing ended). */
export type LimitedTitlesEnd = TitlesEnded | { refused: RateLimitVerdict }

/** A live user as aggregate statistics need it: what each live session is, not when. */
export interface LiveUser {
  userId: UserId
  /** The user's live sessions (at least one). */
  sessions: ReadonlyArray<Pick<Session, 'source' | 'deviceType' | 'activity'>>
}

/**
 * Where live sessions are kept. Sessions expire on their own: every read computes liveness from
 * `now`, so a session past `expiresAt` is never returned even before `sweepExpired` has run.
 * Adapters: MemoryPresenceStore (embedded default), RedisPresenceStore (fleet).
 */
export interface PresenceStore {
  /**
   * Creates or refreshes a session; returns the user's presence before and after. Every session
   * of the user past its expiry and not swept yet (the written key's, which the write starts
   * again, and any other) ends in the same step and is returned as `expired`, never claimed by
   * a sweep after: the change tells that expiry first (core expiryOf), so a user who comes back
   * before the sweep is told offline and online again, once each, whichever node sweeps.
   */
  heartbeat(write: SessionWrite, now: number): Promise<PresenceChange>
  /**
   * Optional: heartbeat() and a rate-limit hit of `limiter` in one atomic step (fleet mode on a
   * single Redis: one round trip), the hit counted whatever the verdict and nothing written when
   * a rule refuses. Undefined (synchronously) when this store cannot count in that limiter's
   * budget: the caller then counts the hit first. A store that does it at once (embedded mode)
   * may answer without a promise (no microtask turns per heartbeat); a failure is then thrown.
   */
  limitedHeartbeat?(
    write: SessionWrite,
    now: number,
    hit: RateLimitHit,
    limiter: RateLimiter,
  ): LimitedWrite | Promise<LimitedWrite> | undefined
  /**
   * Ends one session at once; undefined if there was no live session with that key. The user's
   * other sessions past expiry end in the same step, returned as `expired` (see heartbeat()).
   */
  end(
    userId: UserId,
    key: string,
    now: number,
    reason: OfflineReason,
  ): Promise<PresenceChange | undefined>
  /**
   * Ends the title sessions `end` names in one atomic step (see TitleEnd): a title started
   * while it runs is either ended by it or started after it, never skipped. A title session
   * already past expiry is not ended (the sweep reports it), but when one ends, every session of
   * the user past expiry ends with the first change and is returned on it as `expired`, as end()
   * returns them.
   */
  endTitles(end: TitleEnd, now: number): Promise<TitlesEnded>
  /**
   * Optional: endTitles() with `budget`'s hits counted in the same atomic step (fleet mode: one
   * round trip), one per title it counts (`titleHit`), `budget.idleTitleId`'s when there is
   * none, in order, stopping at the first refused (those before it stay counted) and then
   * ending nothing. Undefined (synchronously) when this store cannot count in that limiter's
   * budget: the caller then counts the hits first.
   */
  limitedEndTitles?(
    end: TitleEnd,
    now: number,
    budget: TitleBudget,
    limiter: RateLimiter,
  ): Promise<LimitedTitlesEnd> | undefined
  /** The presences of `ids`, in that order, one per entry; unknown users have no sessions. */
  getMany(ids: readonly UserId[], now: number): Promise<UserPresence[]>
  /**
   * The summaries of `ids` at `now`, in that order, one per entry: for each, exactly
   * `summaryOf(presence, now)` (core/privacy.ts) of what getMany would return, without making
   * its Session objects (the read path of the single-location replies). `values`, when given:
   * `Number(ids[i])` for each id, all below 2^53 (what a request's parser read), which a store
   * may find users by instead of reading the ids' digits again. `device` false: the caller does
   * not read `deviceType` and `source` (Roblox's replies), which a store may then leave '' and
   * 'app' (the memory store does: reading them was about 70 instructions an id, issue 19).
   */
  summarize(
    ids: readonly UserId[],
    now: number,
    values?: readonly number[],
    device?: boolean,
  ): Promise<PresenceSummary[]>
  /** Optional: summarize(), answered at once (the memory store). */
  summarizeNow?(
    ids: readonly UserId[],
    now: number,
    values?: readonly number[],
    device?: boolean,
  ): PresenceSummary[]
  /**
   * Optional: getMany() beside `privacy.getSettings(ids)`, read together (fleet mode: each user's
   * settings are folded into its presence value, one MGET for both). Undefined (synchronously)
   * when this store does not hold `privacy`'s settings: the caller then asks `privacy`.
   */
  getManyWithSettings?(
    ids: readonly UserId[],
    now: number,
    privacy: PrivacyStore,
  ): Promise<[UserPresence[], UserSettings[]]> | undefined
  /** Optional: summarize() beside `privacy.getSettings(ids)`, as getManyWithSettings. */
  summarizeWithSettings?(
    ids: readonly UserId[],
    now: number,
    privacy: PrivacyStore,
  ): Promise<[PresenceSummary[], UserSettings[]]> | undefined
  /**
   * Applies a game server's full roster at once (PUT semantics, idempotent): every listed player
   * gets or refreshes the session `server:<gameId>`; players of the previous roster who are not
   * listed lose theirs (reason `explicit`). Returns the changes a watcher could see: players who
   * joined (or whose session restarted or changed activity) and players who left; a refresh that
   * only moves expiry is applied but not returned. A player's sessions past expiry (a listed
   * one's; a leaver's beside the live session it loses, as end() does) are ended and returned as
   * heartbeat() ends them (`expired`), and their change is returned. Ids must be
   * canonical and distinct. With
   * `report.universes`, throws ServerUniverseRefused, writing nothing, when the server's live
   * roster belongs to another universe: checked in the same step as the roster is swapped.
   */
  reportServer(report: ServerReport, now: number): Promise<PresenceChange[]>
  /**
   * Ends a game server and every player's session on it at once; one change per player, which
   * ends and returns the player's other sessions past expiry as end() does (`expired`). With
   * `universes` (a writer's allow-list, non-empty), throws ServerUniverseRefused, ending nothing,
   * when the roster it finds is live and of another universe (one past its expiry: nothing
   * ended), as it finds it, not as a read made before found it.
   */
  endServer(
    gameId: string,
    now: number,
    reason: OfflineReason,
    universes?: readonly string[],
  ): Promise<PresenceChange[]>
  /** The roster of a game server as last reported; undefined if unknown or past its expiry. */
  getServer(gameId: string, now: number): Promise<ServerRoster | undefined>
  /**
   * Claims and removes up to `limit` sessions whose expiresAt <= now, each exactly once across
   * every node, updating lastOnline; returns one change per user affected
   * (reason: see `sweepReason`).
   */
  sweepExpired(now: number, limit: number): Promise<PresenceChange[]>
  /**
   * Ends every session of one user past expiry at `now` and not swept yet, as sweepExpired would
   * (the same change: `before` as stored, `ended`, reason `sweepReason`, lastOnline moved to the
   * last heartbeat of those ended, never back), in one atomic step: each is then claimed exactly
   * once across nodes, never by a later sweep nor told again as a write's `expired`. Undefined
   * when none had expired. A settings write that shows the user more runs it in its own step
   * (replaceSettingsAfterExpiry), so that an expiry is judged by the settings in force when it
   * happened, not by the new ones.
   */
  expire(userId: UserId, now: number): Promise<PresenceChange | undefined>
  /**
   * Settings writes that show their users more (core showsMore), each in one atomic step with
   * expire() of its user at `now` just before it: `privacy.replaceSettings` of each of `writes`,
   * in order (a user's later write expects what its earlier one stores), the expiry made whether
   * or not the write lands. Each expiry's change carries `settings`, those in force as it was made
   * (the ones the write replaces, or those that refused it), by which it is judged: no session
   * can expire between the two steps and be swept after under the new, wider settings. Fleet
   * mode: one script per write when `privacy` keeps the settings beside this store's values (the
   * same Redis and keys), else the two steps one after the other; embedded mode: nothing awaited
   * between them when `privacy` answers at once (getSettingsNow).
   */
  replaceSettingsAfterExpiry(
    writes: readonly SettingsReplacement[],
    now: number,
    privacy: PrivacyStore,
  ): Promise<SettingsReplaced[]>
  /**
   * Every user with a live session at `now`, in batches of about `batchSize`: what the dashboard
   * counts per state, universe, place and title. Optional: an adapter without it shows no
   * breakdowns. Not a consistent snapshot: writes between batches may or may not be seen, but
   * each user appears at most once.
   */
  liveUsers?(now: number, batchSize: number): AsyncIterable<LiveUser[]>
  /** Live session and user counts, for metrics. */
  stats(now: number): Promise<{ sessions: number; users: number }>
  ready(): Promise<boolean>
  close(): Promise<void>
}

/** One user's settings write, stored only while they are still `expected` (replaceSettings). */
export interface SettingsReplacement {
  userId: UserId
  expected: UserSettings
  next: UserSettings
}

/** What PresenceStore.replaceSettingsAfterExpiry made of one write. */
export interface SettingsReplaced {
  /** Whether the settings were stored (false: they were no longer `expected`; nothing stored). */
  landed: boolean
  /** The expiry made just before the write, as expire() returns it; undefined for none. */
  expired?: PresenceChange
}

/** A game server's report: everyone connected to that server instance now. */
export interface ServerReport {
  /** The server instance (uuid). */
  gameId: string
  /** Canonical, distinct ids. */
  players: readonly UserId[]
  /** What each player is doing there: inGame, with the place, universe and gameId. */
  activity: Activity
  deviceType: string
  ttlMs: number
  /**
   * The writer's allow-list of universes, when it has one (non-empty): the report replaces a
   * live roster only of one of these (see reportServer).
   */
  universes?: readonly string[]
}

/**
 * A game server write refused in the store's own step: the server's live roster belongs to
 * `universeId` (undefined: no known universe), which the writer's allow-list does not hold.
 */
export class ServerUniverseRefused extends Error {
  constructor(readonly universeId: string | undefined) {
    super(`the game server's roster belongs to universe ${universeId ?? '(none)'}`)
    this.name = 'ServerUniverseRefused'
  }
}

/** Whether a writer with allow-list `universes` (none or empty: any) may replace a roster of `universeId`. */
export function rosterWritable(
  universes: readonly string[] | undefined,
  universeId: string | undefined,
): boolean {
  return universes === undefined || mayWriteUniverse({ universes }, universeId)
}

/** A game server's roster as last reported. */
export interface ServerRoster {
  gameId: string
  players: UserId[]
  activity: Activity
  updatedAt: number
  expiresAt: number
}

/** The key of a player's session on a game server: one per server instance. */
export function serverSessionKey(gameId: string): string {
  return `server:${gameId}`
}
