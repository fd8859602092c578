import type { Place, ProfileRecord, Title, UserProfile } from '../core/catalogue.js'
import { isPrivacyRecord, type CatalogueRecord, type PrivacyRecord } from '../core/catalogue.js'
import {
  deriveUserState,
  sweptAt,
  titleSessionKey,
  titleIdsFound,
  titleSessionsOn,
  type Activity,
  type InheritedField,
  type OfflineReason,
  type Placement,
  type PresenceChange,
  type PresenceType,
  type RichPresence,
  type TitleState,
  type UserPresence,
} from '../core/presence.js'
import {
  accessOf,
  lastOnlineSeenAt,
  sawAtBlockEnd,
  nextSettings,
  strangers,
  visiblePresence,
  applyPrivacy,
  blockEndResolved,
  type BlockSight,
  type PresenceSummary,
  type Relation,
  type UserSettings,
  type Viewer,
  type VisiblePresence,
  sameSettings,
  settingsAudiences,
  showsMore,
} from '../core/privacy.js'
import { beyondUniverses, universesWithin } from '../core/api-key.js'
import type { Issuer, UserCaller } from '../core/caller.js'
import { fail } from '../core/errors.js'
import { parseUserId, type UserId } from '../core/user-id.js'
import type { BusEvent, ChangeBus } from '../realtime/change-bus.js'
import { Fanout, type FanoutOptions } from '../realtime/fanout.js'
import type { CatalogueStore } from '../store/catalogue-store.js'
import type { CredentialStore } from '../store/credential-store.js'
import type {
  LimitedWrite,
  PresenceStore,
  SessionWrite,
  SettingsReplacement,
  TitleEnd,
} from '../store/presence-store.js'
import type { PrivacyStore } from '../store/privacy-store.js'
import {
  titleHit,
  type RateLimitHit,
  type RateLimiter,
  type TitleBudget,
} from '../store/rate-limiter.js'
import type { RequestAdmission } from './admission.js'
import { ApiKeys } from './api-keys.js'
import { Authenticator } from './authenticator.js'
import type { Clock } from './clock.js'
import { GameServers } from './game-servers.js'
import { Janitor } from './janitor.js'
import type { ServiceObserver } from './observer.js'
import { PlaceCatalogue, withPlace } from './place-catalogue.js'
import { PresenceFeed, type PresenceFeedOptions } from './presence-feed.js'
import { PresenceStats, type PresenceStatsOptions } from './presence-stats.js'
import { LOST_TO_ANOTHER, retryLostWrites } from './conflicting-writes.js'
import { FallbackRateLimiter } from './fallback-rate-limiter.js'
import { RateLimits, type RateLimitSettings } from './rate-limits.js'
import { AuthFailures, type AuthFailureSettings } from './auth-failures.js'
import { eachSettled } from './each-settled.js'
import { observedBus } from './observed-bus.js'
import { RealtimeCensus } from './realtime-census.js'
import { Revocations } from './revocations.js'
import {
  STREAM_RECHECK_MS,
  StreamAccess,
  type StreamAccessDeps,
  type StreamHolder,
} from './stream-access.js'
import type { Tokens } from './tokens.js'
import {
  EVERYONE,
  MemoryHistory,
  isRefresh,
  relationConcern,
  settingsConcern,
  type History,
} from '../realtime/history.js'
import { PositionTokens } from '../realtime/position-token.js'
import type { StreamCheckpoint, StreamCheckpoints } from '../realtime/stream-checkpoints.js'
import type { StreamHoldings } from '../realtime/stream-holdings.js'
import { dutyLease, type FleetDuties } from '../store/fleet-duties.js'
import type { PresenceView } from './webhooks/webhook-events.js'
import { Webhooks, defaultWebhookSettings, type WebhookSettings } from './webhooks/webhooks.js'
import type { WebhookStore } from '../store/webhook-store.js'

/** The adapters the service runs on; it keeps them to itself. */
export interface ServiceStores {
  presence: PresenceStore
  privacy: PrivacyStore
  catalogue: CatalogueStore
  credentials: CredentialStore
  bus: ChangeBus
  /** Each user's recent changes, for resume anywhere; in this process when absent. */
  history?: History
  /** Checkpoints of SSE streams ended by a shutdown, shared by a fleet; absent: none kept. */
  checkpoints?: StreamCheckpoints
  /** Each user's real-time holdings summed over a fleet; absent: the limits hold per node. */
  holdings?: StreamHoldings
  /** Duties one node of a fleet does for all, by lease (FleetDuties); absent: this node does all. */
  duties?: FleetDuties
  rateLimiter: RateLimiter
  /**
   * Counts what `rateLimiter` cannot while its store refuses writes (FallbackRateLimiter): the
   * request budgets and the guessed credentials.
   */
  localRateLimiter?: RateLimiter
}

/** Users one stream checkpoint holds at most: an SSE stream's ids (MAX_IDS of the native API). */
export const CHECKPOINT_MAX_IDS = 1000

/** How often the janitor prunes the records of ended blocks that are no longer needed. */
export const BLOCK_ENDS_PRUNE_MS = 60_000

/** Settings writes stored with their users' expiries per store call, in order (#replaceAfterExpiry). */
const EXPIRE_BATCH = 100

/** Catalogue places read at once when checking a universe-limited key's writes. */
const PLACE_CHECK_BATCH = 1000

export interface ServiceSettings {
  /** How long a session lives after each heartbeat unless the write says otherwise. */
  sessionTtlMs: number
  /** How often expired sessions are swept (bounds how late an offline event is). */
  sweepIntervalMs: number
  /** The operator's admin key; undefined turns the admin API off. */
  adminKey: string | undefined
  /** The key /metrics requires besides the admin key; neither turns /metrics off. */
  metricsKey?: string | undefined
  rateLimits: RateLimitSettings
  /** Guessed credentials per client address (see AuthFailures); default 20 per minute. */
  authFailures?: AuthFailureSettings
  /** How often revocations made on other nodes are polled from the store; default 5 s. */
  revocationSyncMs?: number
  /**
   * How long a place read from the catalogue is used for heartbeats before it is read again
   * (bounds how long a lost change announcement goes unhealed); default a minute.
   */
  placeTrustMs?: number
}

export interface ServiceDeps {
  stores: ServiceStores
  tokens: Tokens
  clock: Clock
  settings: ServiceSettings
  observer?: ServiceObserver
  /** Failures of background duties (sweeps, revocation syncs, fan-out). */
  onBackgroundError?: (error: unknown, duty: string) => void
  /** Webhooks: their store, the wire view of a presence in payloads, delivery settings; absent: off. */
  webhooks?: { store: WebhookStore; view: PresenceView; settings: WebhookSettings }
}

/**
 * What is left of a request's admission once its caller is known (rate limit, CSRF), for a read
 * to run beside its store round trip: resolves when admitted, throws the refusal; or, done at
 * once (embedded mode), returns nothing or throws the refusal.
 */
export type Admission = () => void | Promise<void>

export type HeartbeatInput = Omit<SessionWrite, 'ttlMs'> & {
  ttlMs?: number
  /**
   * When the credential the write comes with stops holding (epoch ms: a token's expiry): the
   * write is refused (401, token expired) when it is made at or past it, whatever the time it
   * was asked at. For a write that waits (a real-time connection's queued heartbeat, a rate
   * limit or a place to look up first), the credential is judged at the write, not before.
   */
  validUntil?: number
}

/** An Xbox title's presence write on one device (a TitleRequest): members it leaves out are undefined. */
export interface TitleHeartbeatInput {
  userId: UserId
  titleId: string
  deviceType: string
  placement?: Placement
  titleState?: TitleState
  richPresence?: RichPresence
  ttlMs?: number
}

/** An end of a user's Xbox titles on one device: `titleId`'s only, or every one it runs. */
export interface EndTitlesInput {
  userId: UserId
  deviceType: string
  titleId?: string
}

type SettingsEvent = Extract<BusEvent, { type: 'settings' }>

/** What an operator sees of one user: no privacy applied. */
export interface RawPresence {
  presence: UserPresence
  settings: UserSettings
  state: PresenceType
}

/** `presences` as `viewer` may see them (lookup's privacy), in order. */
function visibleAll(
  viewer: Viewer,
  presences: readonly UserPresence[],
  settings: readonly UserSettings[],
  relations: readonly Relation[] | undefined,
  now: number,
): VisiblePresence[] {
  return presences.map((presence, i) => {
    const targetSettings = settings[i]!
    const access = accessOf(viewer, presence.userId, targetSettings, relations?.[i] ?? strangers)
    return visiblePresence(presence, access, targetSettings, now)
  })
}

/**
 * The one API every protocol calls, and the one place every rule lives: authentication and
 * scopes (`auth`), rate limits (`limits`), privacy (applied through the core on every read), the
 * invisibility rules, and what metrics and the change bus see. It owns the stores: every write,
 * whatever its source (a device, a game server, an import, an expiry), goes through here, is
 * published on the change bus and reported to the observer.
 */
export class PresenceService {
  readonly auth: Authenticator
  readonly keys: ApiKeys
  readonly limits: RateLimits
  readonly servers: GameServers
  readonly webhooks: Webhooks
  /** What real-time transports and the dashboard hold open (metrics read it). */
  readonly census = new RealtimeCensus()
  readonly #stores: ServiceStores
  readonly #bus: ChangeBus
  readonly #history: History
  readonly #tokens: Tokens
  readonly #clock: Clock
  readonly #settings: ServiceSettings
  readonly #observer: ServiceObserver
  readonly #revocations: Revocations
  /** What every stream's access reads, made once (see streamAccess). */
  #streamAccessDeps: StreamAccessDeps | undefined
  readonly #authFailures: AuthFailures
  readonly #janitor: Janitor
  /** Where the next pruning of block ends resumes its walk (a rank, see PrivacyStore.blockEnds). */
  #blockEndsAt = 0
  readonly #places: PlaceCatalogue
  readonly #onError: (error: unknown, duty: string) => void
  #unsubscribe: (() => void) | undefined

  constructor(deps: ServiceDeps) {
    const { stores, clock, settings } = deps
    this.#stores = stores
    this.#history = stores.history ?? new MemoryHistory({ entries: 32, ageSeconds: 300 })
    this.#history.keepOnly?.((userId) => this.census.isWatched(userId))
    this.#tokens = deps.tokens
    this.#clock = clock
    this.#settings = settings
    this.#observer = deps.observer ?? {}
    const observer = this.#observer
    this.#bus = observedBus(
      stores.bus,
      observer.busPublished && ((type) => observer.busPublished?.(type)),
    )
    this.#onError = deps.onBackgroundError ?? (() => {})
    this.#places = new PlaceCatalogue(stores.catalogue, clock, settings.placeTrustMs)
    this.keys = new ApiKeys(stores.credentials, clock)
    this.#revocations = new Revocations(stores.credentials, clock, {
      syncIntervalMs: settings.revocationSyncMs ?? 5000,
      onError: (error) => this.#onError(error, 'revocation sync'),
      announce: (tokenId, expiresAt) => this.#bus.publish({ type: 'revoked', tokenId, expiresAt }),
    })
    const limiter = stores.localRateLimiter
      ? new FallbackRateLimiter(stores.rateLimiter, stores.localRateLimiter)
      : stores.rateLimiter
    this.#authFailures = new AuthFailures({
      limiter,
      clock,
      settings: settings.authFailures ?? { max: 20, windowMs: 60_000 },
      announce: (address, until) => this.#bus.publish({ type: 'auth-blocked', address, until }),
      refused: () => this.#observer.authRefused?.(),
      crossed: (address, limit) => this.#observer.authLimitReached?.(address, limit),
      onError: (error) => this.#onError(error, 'auth-failure announcement'),
    })
    this.auth = new Authenticator({
      tokens: deps.tokens,
      keys: this.keys,
      revocations: this.#revocations,
      clock,
      adminKey: settings.adminKey,
      metricsKey: settings.metricsKey,
      failures: this.#authFailures,
    })
    this.limits = new RateLimits(limiter, clock, settings.rateLimits)
    this.servers = new GameServers({
      presence: stores.presence,
      catalogue: stores.catalogue,
      clock,
      sessionTtlMs: settings.sessionTtlMs,
      applied: (changes, players) => this.#serverChanges(changes, players),
      lookup: (viewer, ids) => this.lookup(viewer, ids),
      spend: (keyId, gameId) => this.limits.gameServer(keyId, gameId),
    })
    this.webhooks = new Webhooks({
      store: deps.webhooks?.store,
      keys: this.keys,
      clock,
      settings: deps.webhooks?.settings ?? defaultWebhookSettings,
      view: deps.webhooks?.view ?? (() => null),
      settingsOf: (ids) => stores.privacy.getSettings(ids),
      ...(stores.privacy.getSettingsNow && {
        settingsNow: (ids: readonly UserId[]) => stores.privacy.getSettingsNow!(ids),
      }),
      presencesOf: (ids) => this.#storedPresences(ids),
      onError: (error, duty) => this.#onError(error, duty),
      onOutcome: (outcome, delivery) =>
        this.#observer.webhookOutcome?.(outcome, clock.now() - delivery.createdAt),
      onUnstored: (count) => this.#observer.webhookUnstored?.(count),
    })
    // the janitor's offline changes go out like every other change: bus, then webhooks
    this.#janitor = new Janitor(stores.presence, { publish: (e) => this.#announce(e) }, clock, {
      intervalMs: settings.sweepIntervalMs,
      batchSize: 1000,
      onSweep: (users, lateness) => this.#observer.swept?.(users, lateness),
      chore: {
        intervalMs: BLOCK_ENDS_PRUNE_MS,
        // a fleet walks the ends once, on the node holding the duty, not once per node
        ...(stores.duties && {
          lease: dutyLease(stores.duties, 'block-ends', 3 * BLOCK_ENDS_PRUNE_MS),
        }),
        run: () => this.pruneBlockEnds(),
        onError: (error) => this.#onError(error, 'block ends'),
      },
    })
  }

  /** Starts the background duties: expiry sweeps and revocation syncs. */
  async start(): Promise<void> {
    this.#unsubscribe ??= this.#bus.subscribe((event) => {
      this.#observer.busReceived?.(event.type)
      if (event.type === 'revoked') this.#revocations.remember(event.tokenId, event.expiresAt)
      else if (event.type === 'auth-blocked')
        this.#authFailures.remember(event.address, event.until)
      else if (event.type === 'place') this.#places.forget(event.placeId)
    })
    await this.#revocations.sync()
    this.#revocations.start()
    this.#janitor.start()
    await this.webhooks.start()
  }

  /** Stops the background duties; the stores stay open (their owner closes them). */
  async stop(): Promise<void> {
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    await this.#janitor.stop()
    await this.#revocations.stop()
    await this.webhooks.stop()
  }

  /**
   * Forgets the records of ended blocks that no longer change what their viewer is shown
   * (blockEndResolved: the target was seen alive since, or did nothing while blocked): at most
   * `limit` records looked at, in batches of `batch`, from where the last run stopped, so a
   * store with many ends still kept costs each run a bounded walk. The janitor's, once a minute
   * (BLOCK_ENDS_PRUNE_MS); the number of records dropped.
   */
  async pruneBlockEnds(limit = 20_000, batch = 500): Promise<number> {
    const { privacy, presence } = this.#stores
    let seen = 0
    let dropped = 0
    while (seen < limit) {
      const ends = await privacy.blockEnds(this.#blockEndsAt, Math.min(batch, limit - seen))
      if (ends.length === 0) {
        // the walk reached the newest end: the next run starts again from the oldest
        this.#blockEndsAt = 0
        break
      }
      const targets = [...new Set(ends.map((end) => end.target))]
      const now = this.#clock.now()
      const [settings, presences] = await Promise.all([
        privacy.getSettings(targets),
        presence.getMany(targets, now),
      ])
      const at = new Map(targets.map((target, i) => [target, i]))
      const resolved = ends.filter((end) => {
        const i = at.get(end.target)!
        return blockEndResolved(end, settings[i]!, presences[i]!.lastOnline, presences[i]!.sessions)
      })
      await privacy.dropBlockEnds(resolved)
      // what was dropped leaves the ranks: the kept ones are all the walk moves past
      this.#blockEndsAt += ends.length - resolved.length
      seen += ends.length
      dropped += resolved.length
    }
    return dropped
  }

  /** Sweeps expired sessions now (tests; the janitor does it on its own otherwise). */
  sweepExpired(): Promise<number> {
    return this.#janitor.sweepOnce()
  }

  // ---- presence ----

  /**
   * The presences of `ids` as `viewer` may see them, in order. `admission`: the rest of the
   * request's admission (its rate limit, see RateLimits.request), started first and beside the
   * read, so that in fleet mode its Redis command goes out in the read's round trip; when it
   * refuses, its error is thrown and the read is dropped.
   */
  lookup(
    viewer: Viewer,
    ids: readonly UserId[],
    admission?: Admission,
  ): Promise<VisiblePresence[]> {
    const now = this.#clock.now()
    const presence = this.#stores.presence
    return this.#readForViewer(
      viewer,
      ids,
      undefined,
      admission,
      () => presence.getMany(ids, now),
      () => presence.getManyWithSettings?.(ids, now, this.#stores.privacy),
      (found, settings, relations) => {
        // places as the catalogue has them now; no promise when all are in memory
        const resolved = this.#places.resolve(found, now)
        return resolved instanceof Promise
          ? resolved.then((presences) => visibleAll(viewer, presences, settings, relations, now))
          : visibleAll(viewer, resolved, settings, relations, now)
      },
    )
  }

  /**
   * lookup() as summaries (see PresenceSummary): the same privacy, by the same rules
   * (visibleSummary), for replies that show one location per user. No Session objects.
   * `admission` as for lookup(): started first, in the read's round trip. `values`: the ids'
   * values, when the caller parsed them (PresenceStore.summarize). `device` false: the caller
   * reads no summary's `deviceType` and `source` (PresenceStore.summarize).
   */
  lookupSummaries(
    viewer: Viewer,
    ids: readonly UserId[],
    admission?: Admission,
    values?: readonly number[],
    device = true,
  ): Promise<PresenceSummary[]> {
    const now = this.#clock.now()
    const presence = this.#stores.presence
    return this.#readForViewer(
      viewer,
      ids,
      values,
      admission,
      () => presence.summarize(ids, now, values, device),
      () => presence.summarizeWithSettings?.(ids, now, this.#stores.privacy),
      (found, settings, relations) => this.#shown(viewer, found, now, settings, relations),
    )
  }

  /**
   * lookupSummaries(), answered without a promise when every step is done at once (embedded
   * mode: the stores answer from memory, the limiter counts in the same tick, the places are
   * catalogued): the admission, the read, the settings and the viewer's relations in that order,
   * then the places and privacy. Each promise, its Promise.all and their microtask turns were
   * about 10k instructions of a 50-id read (callgrind, issue 19). A refusal is thrown; a step
   * that must wait goes on from its promise, with the same answer and the same errors.
   */
  lookupSummariesNow(
    viewer: Viewer,
    ids: readonly UserId[],
    admission?: Admission,
    values?: readonly number[],
    device = true,
  ): PresenceSummary[] | Promise<PresenceSummary[]> {
    const presence = this.#stores.presence
    const privacy = this.#stores.privacy
    if (
      presence.summarizeNow === undefined ||
      presence.summarizeWithSettings !== undefined ||
      privacy.getSettingsNow === undefined ||
      (viewer.kind === 'user' && privacy.getRelationsNow === undefined)
    ) {
      return this.lookupSummaries(viewer, ids, admission, values, device)
    }
    const now = this.#clock.now()
    const admitted = admission?.()
    const found = presence.summarizeNow(ids, now, values, device)
    const settings = privacy.getSettingsNow(ids)
    const relations =
      viewer.kind === 'user' ? privacy.getRelationsNow!(viewer.userId, ids, values) : undefined
    // no closure held in a const: tsx (esbuild's keepNames) names each one made per request with
    // Object.defineProperty, ~3.9k instructions a closure (callgrind)
    return admitted instanceof Promise
      ? admitted.then(() => this.#shown(viewer, found, now, settings, relations))
      : this.#shown(viewer, found, now, settings, relations)
  }

  /** lookupSummariesNow's last steps: the places, then privacy. */
  #shown(
    viewer: Viewer,
    found: PresenceSummary[],
    now: number,
    settings: readonly UserSettings[],
    relations: readonly Relation[] | undefined,
  ): PresenceSummary[] | Promise<PresenceSummary[]> {
    const resolved = this.#places.resolveSummaries(found, now)
    if (resolved instanceof Promise) {
      return resolved.then((summaries) => {
        applyPrivacy(viewer, summaries, settings, relations)
        return summaries
      })
    }
    applyPrivacy(viewer, resolved, settings, relations)
    return resolved
  }

  /**
   * `read` of `ids` beside what privacy needs of them (settings, the viewer's relations), the
   * admission started first: one tick, so in fleet mode one round trip; then `shown` of what was
   * read. `readWithSettings`: the read and the settings in one, when the presence store holds
   * them (undefined otherwise). `values`: the ids' values, when the caller parsed them
   * (PrivacyStore.getRelations). The first failure of a step is the answer's (Promise.all), a
   * step's throw too (a rejection, as from an async function). Not an async function (one
   * returning this promise would wait two more turns for it), one Promise.all of the steps (no
   * promise made for an anonymous viewer's relations) and `shown` run in its `then`: each async
   * layer, each promise resolved with an array (its `then` looked up) and each microtask turn
   * cost a read about a thousand instructions (callgrind, issue 19).
   */
  #readForViewer<T, R>(
    viewer: Viewer,
    ids: readonly UserId[],
    values: readonly number[] | undefined,
    admission: Admission | undefined,
    read: () => Promise<T[]>,
    readWithSettings: () => Promise<[T[], UserSettings[]]> | undefined,
    shown: (
      found: T[],
      settings: UserSettings[],
      relations: readonly Relation[] | undefined,
    ) => R | Promise<R>,
  ): Promise<R> {
    try {
      const admitted = admission?.()
      const both = readWithSettings()
      if (both !== undefined) {
        if (viewer.kind !== 'user') {
          return Promise.all([admitted, both]).then(([, [found, settings]]) =>
            shown(found, settings, undefined),
          )
        }
        return Promise.all([admitted, both, this.#relationsOf(viewer, ids, values)]).then(
          ([, [found, settings], relations]) => shown(found, settings, relations),
        )
      }
      const found = read()
      const settings = this.#stores.privacy.getSettings(ids)
      // an anonymous viewer has no relations: no promise made for them
      const relations = viewer.kind === 'user' ? this.#relationsOf(viewer, ids, values) : undefined
      return Promise.all([admitted, found, settings, relations]).then(
        ([, found, settings, relations]) => shown(found, settings, relations),
      )
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * The raw presences with every session stored, those expired and not swept yet included: what
   * the webhooks judge a settings change by (a session whose end no receiver was told yet), and
   * what a settings change is computed from (#nextSettings: nextSettings sees live ones only).
   */
  async #storedPresences(ids: readonly UserId[]): Promise<UserPresence[]> {
    const now = this.#clock.now()
    return this.#places.resolve(await this.#stores.presence.getMany(ids, -Infinity), now)
  }

  /** The raw presences, without privacy: for a user's own sessions and operators only. */
  async rawPresences(ids: readonly UserId[]): Promise<UserPresence[]> {
    const now = this.#clock.now()
    return this.#places.resolve(await this.#stores.presence.getMany(ids, now), now)
  }

  /** One user as an operator sees it. */
  async rawPresence(id: UserId): Promise<RawPresence> {
    const now = this.#clock.now()
    const [[presence], [settings]] = await Promise.all([
      this.#stores.presence.getMany([id], now).then((found) => this.#places.resolve(found, now)),
      this.#stores.privacy.getSettings([id]),
    ])
    return {
      presence: presence!,
      settings: settings!,
      state: deriveUserState(presence!.sessions, now),
    }
  }

  /**
   * Creates or refreshes a session and tells every node. `admission`: the request's rate limit
   * and checks, counted in the write's own step when the store can (one Redis round trip in
   * fleet mode on a single Redis), else run first; when it refuses, nothing is written.
   */
  heartbeat(input: HeartbeatInput, admission?: RequestAdmission): Promise<PresenceChange> {
    try {
      const change = this.beat(input, admission)
      return change instanceof Promise ? change : Promise.resolve(change)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * heartbeat(), answered without a promise when every step of it is done at once (embedded
   * mode: the place catalogued in memory, the store's write, nothing to wait for in its
   * announcement); its refusal or failure is then thrown. For the hot paths (the lean
   * register-app-presence): each async layer and each promise resolved with an object cost a
   * heartbeat microtask turns and a `then` lookup (~9k instructions in all, issue 19).
   */
  beat(
    input: HeartbeatInput,
    admission?: RequestAdmission,
  ): PresenceChange | Promise<PresenceChange> {
    const placed = this.#resolvePlace(input.activity)
    return placed instanceof Promise
      ? placed.then((activity) => this.#beatAs(input, activity, admission))
      : this.#beatAs(input, placed, admission)
  }

  /** beat() once the activity's place is known. */
  #beatAs(
    input: HeartbeatInput,
    activity: Activity,
    admission: RequestAdmission | undefined,
  ): PresenceChange | Promise<PresenceChange> {
    // a literal, not a spread of `input`: the spread was 7 % of an in-process heartbeat
    const write: SessionWrite = {
      userId: input.userId,
      key: input.key,
      source: input.source,
      deviceType: input.deviceType,
      activity,
      ttlMs: input.ttlMs ?? this.#settings.sessionTtlMs,
      inherit: input.inherit,
      refreshUnread: input.refreshUnread,
    }
    const now = this.#clock.now()
    if (input.validUntil !== undefined && now >= input.validUntil) {
      throw fail('UNAUTHENTICATED', 'The token this write came with has expired.', {
        tokenRefused: 'expired',
      })
    }
    const change = admission
      ? admission.admitWith(this.#limitedWrite, this.#plainWrite, write, now)
      : this.#stores.presence.heartbeat(write, now)
    return change instanceof Promise
      ? change.then((done) => this.#afterBeat(done, input.source))
      : // written in this very turn: `now` is the history's time too (one clock read fewer)
        this.#afterBeat(change, input.source, now)
  }

  /** #beatAs's store steps for admitWith, made once: no closure per heartbeat. */
  readonly #limitedWrite = (
    hit: RateLimitHit,
    write: SessionWrite,
    now: number,
  ): LimitedWrite | Promise<LimitedWrite> | undefined =>
    this.#stores.presence.limitedHeartbeat?.(write, now, hit, this.#stores.rateLimiter)
  readonly #plainWrite = (write: SessionWrite, now: number): Promise<PresenceChange> =>
    this.#stores.presence.heartbeat(write, now)

  /** A heartbeat's change told (when it is one) and counted; the change once that is done. */
  #afterBeat(
    change: PresenceChange,
    source: HeartbeatInput['source'],
    now?: number,
  ): PresenceChange | Promise<PresenceChange> {
    // A refresh (the same sessions, only expiry moved) that no history recorded is nothing any
    // listener acts on (fan-out, dashboard feed and webhooks all drop it): most heartbeats are
    // refreshes, so they are not published at all.
    const told = change.position
      ? this.#tell(change, false, now)
      : // a change to record: #tell is told so, not left to compare the sessions again
        isRefresh(change)
        ? undefined
        : this.#tell(change, true, now)
    if (told !== undefined) {
      return told.then(() => {
        this.#observer.heartbeats?.(source, 1)
        return change
      })
    }
    this.#observer.heartbeats?.(source, 1)
    return change
  }

  /**
   * Writes a title's presence on a device, as Xbox's TitleRequest does: the members the write
   * leaves out keep the values of the title's live session there, else placement `full` and
   * state `active` (no rich presence). The store takes them in the write's own step
   * (SessionWrite.inherit): nothing is read first, so with its admission it is one Redis round
   * trip in fleet mode, and a write made in between is never undone.
   */
  titleHeartbeat(
    input: TitleHeartbeatInput,
    admission?: RequestAdmission,
  ): Promise<PresenceChange> {
    const { userId, titleId, deviceType, placement, titleState, richPresence } = input
    const activity: Activity = {
      kind: 'online',
      titleId,
      placement: placement ?? 'full',
      titleState: titleState ?? 'active',
    }
    if (richPresence) activity.richPresence = richPresence
    const inherit: InheritedField[] = []
    if (placement === undefined) inherit.push('placement')
    if (titleState === undefined) inherit.push('titleState')
    if (richPresence === undefined) inherit.push('richPresence')
    const write: HeartbeatInput = {
      userId,
      key: titleSessionKey(titleId, deviceType),
      source: 'title',
      deviceType,
      activity,
    }
    if (input.ttlMs !== undefined) write.ttlMs = input.ttlMs
    if (inherit.length > 0) write.inherit = inherit
    return this.heartbeat(write, admission)
  }

  /**
   * Ends a user's title presence on a device at once, as Xbox's DELETE of title presence does:
   * the session of `titleId` there, or without one every title session the device runs (Xbox
   * knows the title from its token; presenced's tokens name none). `budget`: each title this
   * counts (the named one, else those found) spends its hit, and when it finds none
   * `budget.idleTitleId`'s, so a DELETE that ends nothing cannot be sent without limit; the
   * first refused is thrown and nothing is ended. Finding, counting and ending are one step of
   * the store when it can (fleet mode: one Redis round trip), so a title started meanwhile is
   * never left running. Each session ended is its own change (bus, history, webhooks).
   */
  async endTitles(input: EndTitlesInput, budget?: TitleBudget): Promise<PresenceChange[]> {
    const { presence, rateLimiter } = this.#stores
    const end: TitleEnd = { userId: input.userId, deviceType: input.deviceType, reason: 'explicit' }
    if (input.titleId !== undefined) end.titleId = input.titleId
    const now = this.#clock.now()
    const limited = budget && presence.limitedEndTitles?.(end, now, budget, rateLimiter)
    let changes: PresenceChange[]
    if (limited) {
      const done = await limited
      if ('refused' in done) this.limits.check(done.refused)
      changes = (done as { changes: PresenceChange[] }).changes
    } else {
      if (budget) {
        // counted first, for the titles running now; the end below still ends any started in
        // between (uncounted: only a store that counts in its own step can count those)
        // a named title the device does not run spends the idle title's budget: a new title id
        // per request would otherwise be a fresh budget each time
        const titleIds = titleIdsFound(
          titleSessionsOn(
            (await presence.getMany([input.userId], now))[0]!.sessions,
            input.deviceType,
            input.titleId,
          ),
          input.titleId,
        )
        for (const titleId of titleIds.length > 0 ? titleIds : [budget.idleTitleId]) {
          await this.limits.spend(titleHit(budget, titleId))
        }
      }
      changes = (await presence.endTitles(end, this.#clock.now())).changes
    }
    await eachSettled(changes, (change) => this.#publish(change))
    if (changes.length > 0) this.#observer.sessionsEnded?.('explicit', changes.length)
    return changes
  }

  async endSession(
    userId: UserId,
    key: string,
    reason: OfflineReason = 'explicit',
  ): Promise<PresenceChange | undefined> {
    const change = await this.#stores.presence.end(userId, key, this.#clock.now(), reason)
    if (change) {
      await this.#publish(change)
      this.#observer.sessionsEnded?.(reason, 1)
    }
    return change
  }

  /** Live session and user counts (metrics read them at scrape time). */
  liveCounts(): Promise<{ sessions: number; users: number }> {
    return this.#stores.presence.stats(this.#clock.now())
  }

  // ---- privacy ----

  async getSettings(id: UserId): Promise<UserSettings> {
    const [settings] = await this.#stores.privacy.getSettings([id])
    return settings!
  }

  /**
   * Changes a user's privacy settings; members left out keep their value. The lastOnline others
   * see is frozen while the user is invisible and until they are next seen alive after
   * (`nextSettings` in the core), so nothing about the invisible period leaks. A change that
   * shows the user more (core `showsMore`) ends the user's sessions past expiry and not swept yet
   * in the step that stores it, told under the settings it replaces (#replaceAfterExpiry):
   * nothing the user did while hidden shows once they show more.
   */
  async putSettings(
    id: UserId,
    change: Partial<Pick<UserSettings, 'visibility' | 'invisible'>>,
  ): Promise<UserSettings> {
    // written only if unchanged since read (replaceSettings), else computed again
    return retryLostWrites(async () => {
      const current = await this.getSettings(id)
      const next = {
        visibility: change.visibility ?? current.visibility,
        invisible: change.invisible ?? current.invisible,
      }
      const shown = showsMore(current, next)
      const [settings] = await this.#nextSettings([id], [current], [next], shown)
      const event: SettingsEvent = {
        type: 'settings',
        userId: id,
        before: current,
        after: settings!,
      }
      // marked before the write as well as after (#announce): should the write land and the
      // mark after it fail (Redis gone between), the client's retry changes nothing, and only
      // this mark tells a stream resuming from before the change that it happened. A write that
      // changes nothing is marked once, after, as before; so is every write when the history is
      // in this process (a mark there cannot fail)
      if (!this.#history.inProcess && !sameSettings(current, settings!)) {
        await this.#markSettings(event)
      }
      const write = { userId: id, expected: current, next: settings! }
      let untold: { error: unknown } | undefined
      const now = this.#clock.now()
      const [landed, seen] = await this.#storedAround([id], async () => {
        if (!shown) return this.#stores.privacy.replaceSettings(id, current, settings!)
        const [[stored], failed] = await this.#replaceAfterExpiry([write], now)
        untold = failed
        return stored!
      })
      // an expiry told or not, the settings change stored is told (its marks above all), beside
      // the presence as the expiry in its step left it, whether read before or after that step
      const beside = seen && shown ? sweptAt(seen[0]!, now) : seen?.[0]
      if (landed) await this.#announce(event, false, beside)
      if (untold) throw untold.error
      return landed ? settings! : LOST_TO_ANOTHER
    })
  }

  async setFriends(a: UserId, b: UserId, friends: boolean): Promise<void> {
    await this.#relationWrite(a, b, () => this.#stores.privacy.setFriends(a, b, friends))
  }

  /**
   * `blocker` blocks (or unblocks) `blocked`. A block hides each from the other; each keeps
   * seeing the lastOnline they last saw of the other (the instant of the block if they saw the
   * other online), as if the other had gone offline then. Once no block stands between them,
   * each keeps seeing that until the other is next seen alive (Relation.since), as others keep
   * an invisible user's frozen lastOnline after invisibility ends.
   */
  async setBlocked(blocker: UserId, blocked: UserId, isBlocked: boolean): Promise<void> {
    // an unblock keeps what each saw through the block, until the other is next seen alive:
    // the lastOnline of what the other did unseen must not show once the block is lifted
    const [sight] = await this.#blockSights([{ blocker, blocked, isBlocked }])
    await this.#relationWrite(blocker, blocked, () =>
      this.#stores.privacy.setBlocked(blocker, blocked, isBlocked, sight),
    )
  }

  listFriends(id: UserId): Promise<UserId[]> {
    return this.#stores.privacy.listFriends(id)
  }

  // ---- catalogue ----

  getPlace(placeId: string): Promise<Place | undefined> {
    return this.#stores.catalogue.getPlace(placeId)
  }

  /**
   * Names a place; every read shows it at once, on every node (see PlaceCatalogue). `writer`: the
   * API key writing it, when not the operator's admin key (see `checkPlaceWrites`).
   */
  async putPlace(place: Place, writer?: Issuer): Promise<void> {
    await this.checkPlaceWrites([place], writer)
    await this.#stores.catalogue.putPlace(place)
    this.#places.forget(place.placeId)
    await this.#bus.publish({ type: 'place', placeId: place.placeId })
  }

  /**
   * Refuses (403 FORBIDDEN) catalogue writes by an API key limited to universes (core
   * `universesWithin`) unless each place's universe, as stored now and as written, is one of its
   * own: the catalogue decides where a universe-limited presence:write key may report players
   * (GameServers.report), so moving another universe's place into its own, or adding a place
   * elsewhere, would reach past its list. `lines`: an import's line of each place, named in the
   * refusal (and as `line`). Keys without a list, and the operator's, write anything.
   */
  async checkPlaceWrites(
    places: readonly Place[],
    writer: Issuer | undefined,
    lines?: readonly number[],
  ): Promise<void> {
    const limit = writer?.universes ?? []
    if (limit.length === 0) return
    const refuse = (i: number, why: string) => {
      const line = lines?.[i]
      const error = beyondUniverses(limit, `${why}; it writes only places of these universes.`)
      return line === undefined
        ? error
        : fail('FORBIDDEN', `line ${line}: ${error.message}`, { line })
    }
    for (const [i, place] of places.entries()) {
      if (!universesWithin([place.universeId], limit)) {
        throw refuse(i, `place ${place.placeId} would be in universe ${place.universeId}`)
      }
    }
    // an import may hold many places: read them a batch at a time
    for (let from = 0; from < places.length; from += PLACE_CHECK_BATCH) {
      const batch = places.slice(from, from + PLACE_CHECK_BATCH)
      const stored = await Promise.all(batch.map((p) => this.#stores.catalogue.getPlace(p.placeId)))
      for (const [i, current] of stored.entries()) {
        if (current && !universesWithin([current.universeId], limit)) {
          throw refuse(from + i, `place ${current.placeId} is in universe ${current.universeId}`)
        }
      }
    }
  }

  getTitle(titleId: string): Promise<Title | undefined> {
    return this.#stores.catalogue.getTitle(titleId)
  }

  /** The titles of the catalogue among `ids`, by id. */
  async getTitles(ids: Iterable<string>): Promise<Map<string, Title>> {
    const titles = new Map<string, Title>()
    await Promise.all(
      [...ids].map(async (id) => {
        const title = await this.#stores.catalogue.getTitle(id)
        if (title) titles.set(id, title)
      }),
    )
    return titles
  }

  putTitle(title: Title): Promise<void> {
    return this.#stores.catalogue.putTitle(title)
  }

  getUser(id: UserId): Promise<UserProfile | undefined> {
    return this.#stores.catalogue.getUser(id)
  }

  /** The catalogue's users named `names`, in order (see CatalogueStore.getUsersByNames). */
  getUsersByNames(names: readonly string[]): Promise<(UserProfile | undefined)[]> {
    return this.#stores.catalogue.getUsersByNames(names)
  }

  putUser(user: UserProfile): Promise<void> {
    return this.#stores.catalogue.putUser(user)
  }

  /**
   * Applies records of a bulk import (already validated), with the same rules as the single
   * writes: a user the import makes invisible keeps showing the lastOnline they had, a block
   * keeps what each side last saw, and every settings and relation change is published so
   * watchers re-project at once. A settings record is a write like `putSettings` with both
   * members: computed from the settings it replaces and stored only while they are still
   * stored (the store's compare-and-set), else computed again from what is stored then, so that
   * a user's own change landing meanwhile is never overwritten with settings derived from
   * before it (its frozen lastOnline, say), and the mark tells what really changed.
   */
  async importRecords(records: readonly ProfileRecord[]): Promise<void> {
    const privacy: PrivacyRecord[] = []
    const catalogue: CatalogueRecord[] = []
    for (const record of records) {
      if (isPrivacyRecord(record)) privacy.push(record)
      else catalogue.push(record)
    }
    const settingsRecords = privacy.filter(
      (r): r is Extract<PrivacyRecord, { type: 'settings' }> => r.type === 'settings',
    )
    // a block keeps what each side saw; an unblock too, until the other is next seen alive
    const blocks = privacy.filter(
      (r): r is Extract<PrivacyRecord, { type: 'block' }> => r.type === 'block',
    )
    if (blocks.length > 0) {
      const sights = await this.#blockSights(blocks)
      blocks.forEach((record, i) => (record.sight = sights[i]))
    }
    /** The settings records stored, each replacing its `expected`. */
    const landed = new Set<PrivacyRecord>()
    /** The presence each settings record was stored beside (#storedAround). */
    const seen = new Map<PrivacyRecord, UserPresence>()
    /** The first failure to tell an expiry stored with a settings line (#replaceAfterExpiry). */
    let untold: { error: unknown } | undefined
    let batch: PrivacyRecord[] = privacy
    let pending = settingsRecords
    if (privacy.length > 0) {
      const written = retryLostWrites(async () => {
        await this.#importedSettings(pending)
        // as putSettings: a line that shows its user more is stored in one step with the user's
        // expiry, told first; so is every line of that user, in order (each expects the one before)
        const shown = new Set(
          pending.flatMap((r) => (showsMore(r.expected!, r.settings) ? [r.userId] : [])),
        )
        // marked before the write as well as after, as putSettings does
        const changed = this.#history.inProcess
          ? []
          : pending.filter((r) => !sameSettings(r.expected!, r.settings))
        if (changed.length > 0) {
          await this.#history.mark(
            changed.map((r) => r.userId),
            this.#clock.now(),
            changed.map((r) => settingsConcernOf(r.expected!, r.settings)),
          )
        }
        const users = [...new Set(batch.flatMap((r) => (r.type === 'settings' ? [r.userId] : [])))]
        const expiring: Extract<PrivacyRecord, { type: 'settings' }>[] = []
        const rest: PrivacyRecord[] = []
        for (const r of batch) {
          if (r.type === 'settings' && shown.has(r.userId)) expiring.push(r)
          else rest.push(r)
        }
        const now = this.#clock.now()
        const [refused, presences] = await this.#storedAround(users, async () => {
          const [[expiringLanded, failed], refusedAt] = await Promise.all([
            this.#replaceAfterExpiry(
              expiring.map((r) => ({ userId: r.userId, expected: r.expected!, next: r.settings })),
              now,
            ),
            rest.length > 0 ? this.#stores.privacy.importPrivacy(rest) : [],
          ])
          untold ??= failed
          const out = new Set<PrivacyRecord>(refusedAt.map((i) => rest[i]!))
          expiring.forEach((r, i) => expiringLanded[i] || out.add(r))
          return out
        })
        // as putSettings: beside the presence as the expiry stored with a line left it
        const presenceOf = new Map(
          presences
            ? users.map((id, i) => [
                id,
                shown.has(id) ? sweptAt(presences[i]!, now) : presences[i]!,
              ])
            : [],
        )
        for (const r of batch) {
          if (r.type !== 'settings' || refused.has(r)) continue
          landed.add(r)
          const presence = presenceOf.get(r.userId)
          if (presence) seen.set(r, presence)
        }
        if (refused.size === 0) return true
        // a refused line of a user whose later line landed is replaced by it: dropped
        const lastLanded = new Map<UserId, number>()
        settingsRecords.forEach((r, i) => landed.has(r) && lastLanded.set(r.userId, i))
        pending = settingsRecords.filter(
          (r, i) => refused.has(r) && !((lastLanded.get(r.userId) ?? -1) > i),
        )
        batch = pending
        return pending.length === 0 ? true : LOST_TO_ANOTHER
      })
      await this.#importedRelations(privacy, written)
    }
    if (catalogue.length > 0) await this.#stores.catalogue.importCatalogue(catalogue)
    if (catalogue.some((r) => r.type === 'place')) {
      this.#places.forget()
      await this.#bus.publish({ type: 'place' })
    }
    await this.#announceImported(
      privacy.filter((r) => r.type !== 'settings' || landed.has(r)),
      seen,
    )
    if (untold) throw untold.error
  }

  /**
   * Tells of an import's privacy records (each settings record stored, each relation) as a
   * single write tells of its own (#announce, #relationChanged: webhooks, history marks, then
   * the bus), but together: the marks of them all sent at once, then the events, in the order of
   * the records. Redis runs the commands of a batch one after the other, so each gets the
   * deadline of them all (RedisConnection.deadlineFor), where one at a time 10,000 lines took
   * seconds and a Redis slower than the timeout failed the import (503) after it was applied.
   * Each step is tried whatever became of the others; the first failure is then thrown.
   */
  async #announceImported(
    records: readonly PrivacyRecord[],
    seen: ReadonlyMap<PrivacyRecord, UserPresence>,
  ): Promise<void> {
    if (records.length === 0) return
    const events: BusEvent[] = []
    const recorded: Promise<void>[] = []
    const marked: UserId[] = []
    const concerns: string[] = []
    for (const r of records) {
      if (r.type === 'settings') {
        const event: SettingsEvent = {
          type: 'settings',
          userId: r.userId,
          before: r.expected,
          after: r.settings,
        }
        events.push(event)
        recorded.push(this.webhooks.record(event, seen.get(r)))
        marked.push(r.userId)
        concerns.push(r.expected ? settingsConcernOf(r.expected, r.settings) : EVERYONE)
      } else {
        // marked in both histories, each mark concerning the other side only (#relationChanged)
        const [a, b] = r.type === 'friends' ? [r.a, r.b] : [r.blocker, r.blocked]
        events.push({ type: 'relation', users: [a, b] })
        marked.push(a, b)
        concerns.push(relationConcern(b), relationConcern(a))
      }
    }
    let failed: { error: unknown } | undefined
    try {
      // before the events, as each write marks before it tells (see #announce)
      await this.#history.mark(marked, this.#clock.now(), concerns)
    } catch (error) {
      failed = { error }
    }
    const told = await Promise.allSettled(
      // (async: a handler's throw on a local bus is this event's failure, not the others')
      events.map(async (event) => this.#bus.publish(event, events.length)),
    )
    for (const result of [...told, ...(await Promise.allSettled(recorded))]) {
      if (result.status === 'rejected') failed ??= { error: result.reason }
    }
    if (failed) throw failed.error
  }

  /**
   * Sets each import settings record's `expected` (what is stored now, or what the user's
   * previous record makes it) and `settings` (what it asks, by the rules of nextSettings: its
   * `visibility` and `invisible` stay those of the line, so computing it again asks the same).
   */
  async #importedSettings(
    records: readonly Extract<PrivacyRecord, { type: 'settings' }>[],
  ): Promise<void> {
    if (records.length === 0) return
    const ids = [...new Set(records.map((r) => r.userId))]
    const [current, presences] = await Promise.all([
      this.#stores.privacy.getSettings(ids),
      this.#storedPresences(ids),
    ])
    const now = this.#clock.now()
    const state = new Map(ids.map((id, i) => [id, current[i]!]))
    const presenceOf = new Map(ids.map((id, i) => [id, presences[i]!]))
    for (const r of records) {
      const presence = presenceOf.get(r.userId)!
      r.expected = state.get(r.userId)!
      r.settings = nextSettings(r.expected, r.settings, presence, now)
      state.set(r.userId, r.settings)
    }
  }

  // ---- real-time and the dashboard ----

  /**
   * Whether a real-time stream opened with `caller`'s token may still deliver (see
   * StreamAccess): the transport asks before each frame, and `holder` is told when the token
   * expires or is revoked (at once, on any node's logout), so a stream lives no longer than its
   * token. `recheckMs`: how often the revocations are looked up before a frame.
   *
   * @example
   * const access = service.streamAccess(caller, connection)
   * if (!access.stillAllowed()) connection.accessEnded(access.reason!)
   */
  streamAccess(
    caller: UserCaller,
    holder: StreamHolder,
    recheckMs = STREAM_RECHECK_MS,
  ): StreamAccess {
    const deps =
      recheckMs === STREAM_RECHECK_MS
        ? (this.#streamAccessDeps ??= this.#accessDeps(STREAM_RECHECK_MS))
        : this.#accessDeps(recheckMs)
    return new StreamAccess(caller, holder, deps)
  }

  #accessDeps(recheckMs: number): StreamAccessDeps {
    return { clock: this.#clock, revocations: this.#revocations, holds: this.auth, recheckMs }
  }

  /** A fan-out of changes to real-time subscribers, reading through this service's stores. */
  createFanout(options: FanoutOptions): Fanout {
    const fanout = new Fanout(
      this.#bus,
      {
        now: () => this.#clock.now(),
        presences: (ids) => this.rawPresences(ids),
        settings: (ids) => this.#stores.privacy.getSettings(ids),
        relations: (viewer, ids) => this.#stores.privacy.getRelations(viewer, ids),
        positions: (ids) => this.#history.positions(ids),
        history: (userId, from) => this.#history.read(userId, from),
        positionTtlMs: this.#history.positionTtlMs,
      },
      {
        // every node of a fleet shares the token secret, so reads the positions of the others
        positionTokens: new PositionTokens(this.#tokens.mac('realtime-position', 'aes-256')),
        // the per-user limits hold across a fleet, counted in the shared store
        ...(this.#stores.holdings && {
          holdings: this.#stores.holdings,
          onFleetCountError: (operation) => this.#observer.fleetCountFailed?.(operation),
        }),
        ...options,
      },
    )
    return this.census.track(fanout)
  }

  /**
   * Whether a stream ended by a shutdown can be left for another node to continue: fleet mode
   * (an embedded server has no other node).
   */
  get keepsCheckpoints(): boolean {
    return this.#stores.checkpoints !== undefined
  }

  /**
   * Leaves where a stream stood (Fanout.checkpoint) under its resume token for `ttlMs`, for
   * `resumeCheckpoint` on any node. False when nothing was kept: no checkpoints here, nothing
   * sent yet, or more users than CHECKPOINT_MAX_IDS.
   */
  async checkpointStream(
    token: string,
    checkpoint: StreamCheckpoint,
    ttlMs: number,
  ): Promise<boolean> {
    const store = this.#stores.checkpoints
    if (!store || ttlMs <= 0 || checkpoint.seq < 1) return false
    if (checkpoint.held.length > CHECKPOINT_MAX_IDS) return false
    await store.save(token, checkpoint, ttlMs)
    return true
  }

  /**
   * The positions to continue `viewer`'s stream `token` from, when it was checkpointed and the
   * client's last event is the checkpoint's last one (`seq`); the checkpoint is used up either
   * way. Undefined otherwise: none, expired, used, another user's, or another seq (the client
   * missed frames, so its state is not what the positions say).
   */
  async resumeCheckpoint(
    viewer: UserId,
    token: string,
    seq: number,
  ): Promise<Array<[UserId, string]> | undefined> {
    const store = this.#stores.checkpoints
    if (!store || token === '') return undefined
    const checkpoint = await store.take(viewer, token)
    if (!checkpoint || checkpoint.viewer !== viewer || checkpoint.seq !== seq) return undefined
    const held = checkpoint.held
    if (!Array.isArray(held) || held.length > CHECKPOINT_MAX_IDS) return undefined
    const valid = held.every(
      (entry) =>
        Array.isArray(entry) && parseUserId(entry[0]) === entry[0] && typeof entry[1] === 'string',
    )
    return valid ? held : undefined
  }

  createStats(options: PresenceStatsOptions): PresenceStats {
    const { presence, privacy, catalogue } = this.#stores
    const bus = this.#bus
    return new PresenceStats(
      {
        presence,
        profiles: {
          getSettings: (ids) => privacy.getSettings(ids),
          getPlace: (id) => catalogue.getPlace(id),
          getTitle: (id) => catalogue.getTitle(id),
        },
        bus,
        clock: this.#clock,
        place: (id) => this.#places.place(id),
        duties: this.#stores.duties,
      },
      options,
    )
  }

  createFeed(
    pseudonym: (userId: UserId, at: number) => string,
    options?: PresenceFeedOptions,
  ): PresenceFeed {
    const { privacy, catalogue, presence } = this.#stores
    const bus = this.#bus
    const feed = new PresenceFeed(
      {
        bus,
        profiles: {
          getSettings: (ids) => privacy.getSettings(ids),
          getPlace: (id) => catalogue.getPlace(id),
          getTitle: (id) => catalogue.getTitle(id),
        },
        presence,
        clock: this.#clock,
        pseudonym,
      },
      options,
    )
    return this.census.track(feed)
  }

  /** How many nodes share the change bus (fleet mode), if the bus can tell. */
  nodes(): Promise<number> | undefined {
    return this.#bus.nodes?.()
  }

  // ---- internals ----

  #publish(change: PresenceChange): Promise<void> {
    this.#countExpired(change)
    return this.#announce({ type: 'presence', change })
  }

  /**
   * An expiry a write of this node ended before the sweep (PresenceChange.expired) is counted
   * as the sweep's would have been, once: here, where every write's change is told (#publish,
   * #tell), never by a node that hears it on the bus, and never by the sweep, which does not
   * find it after.
   */
  #countExpired(change: PresenceChange): void {
    if (change.expired !== undefined && change.expired.length > 0) {
      this.#observer.expiredByWrite?.(1)
    }
  }

  /**
   * #announce() of a presence change, done at once when every step of it can be (a history in
   * this process's memory, a single-process bus, no webhook to store it for): undefined then, or
   * its first failure thrown after every step was tried; else #announce's promise. A heartbeat's
   * awaits of three settled promises and an async layer were microtask turns (issue 19).
   * `now`: the clock's reading the change was written at in this same turn, the history's time
   * for it then (else the clock is read).
   */
  #tell(change: PresenceChange, changed: boolean, now?: number): Promise<void> | undefined {
    this.#countExpired(change)
    const history = this.#history
    const bus = this.#bus
    const event: BusEvent = { type: 'presence', change }
    if (history.appendNow === undefined || bus.publishNow === undefined) {
      return this.#announce(event, changed)
    }
    let failed: { error: unknown } | undefined
    if (!change.position && (changed || !isRefresh(change))) {
      try {
        history.appendNow(change, now ?? this.#clock.now())
      } catch (error) {
        failed = { error }
      }
    }
    try {
      bus.publishNow(event)
    } catch (error) {
      failed ??= { error }
    }
    const recorded = this.webhooks.recordNow(event)
    if (recorded !== undefined) {
      return recorded.then(() => {
        if (failed) throw failed.error
      })
    }
    if (failed) throw failed.error
    return undefined
  }

  /**
   * A change made on this node goes to every node's watchers (the bus) and, from here only, to
   * the webhook outbox: enqueued once per change, however many nodes listen. The change is
   * stored already, so each of these effects is tried whatever became of the others (a bus out
   * of reach must not cost the webhooks their event); the first failure is then thrown, as if
   * the others had not been tried. `seen`, with a settings change: the presence read beside its
   * write (#storedAround; WebhookOutbox judges the change by it); this node's own, never on the
   * bus.
   */
  async #announce(event: BusEvent, changed = false, seen?: UserPresence): Promise<void> {
    let failed: { error: unknown } | undefined
    // the outbox first, before any await: it reads the settings a presence change is judged by
    // at once where it can (embedded mode), so those are the ones in force when it was stored
    const recorded = this.webhooks.record(event, seen)
    // a fleet store recorded the change in the history in its own script; else it is done here,
    // once, by the node that made the change, before any node can hear of it (`changed`: the
    // caller found it is no refresh already)
    if (
      event.type === 'presence' &&
      !event.change.position &&
      (changed || !isRefresh(event.change))
    ) {
      try {
        await this.#history.append(event.change, this.#clock.now())
      } catch (error) {
        failed = { error }
      }
    }
    // who may see what changed: a replay must not show earlier changes under the new rules
    // (concerning whom the change concerns: a viewer it did not concern resumes as across none)
    if (event.type === 'settings') {
      try {
        await this.#markSettings(event)
      } catch (error) {
        failed ??= { error }
      }
    }
    try {
      await this.#bus.publish(event)
    } catch (error) {
      failed ??= { error }
    }
    await recorded
    if (failed) throw failed.error
  }

  /**
   * Stores settings writes that show their users more, each in one atomic step with the end of its
   * user's sessions past expiry and not swept yet (PresenceStore.replaceSettingsAfterExpiry), and
   * tells each such expiry as the sweep would have (#announce, the janitor's path) before the
   * caller tells the settings change: an expiry is judged by the settings in force when it
   * happened, and a later sweep or write would judge it by the wider new ones, which core
   * settingsAt cannot narrow back (it rebuilds invisibility, not a visibility). A `nobody` user
   * whose game expired and who then shows places to everyone must not be told, by that sweep, to
   * have left the place, and a webhook of its universe must hear nothing. One step, so that no
   * session can expire between the expiry and the write and be swept after under the new
   * settings (the fleet settings race: two steps a few ms apart before). The expiry is told before
   * the settings change on every surface, judged by the settings it carries (the change's
   * `settings`: embedded, those read in the same turn; fleet, those the script folded into it),
   * which the outbox and the public feed take, not what a read finds once the write landed; the
   * bus and the history get it first (fleet: from the script; a fleet write's mark before it, see
   * putSettings, precedes it there: a resume across that mark shows the current state anyway).
   * A hundred writes at a time, in order (a user's later write expects what its earlier one
   * stores), each expiry made at `now`. Returns whether each landed, and the first failure to tell
   * an expiry: the caller throws it once the settings change is told too (it is stored, whatever
   * became of the telling).
   */
  async #replaceAfterExpiry(
    writes: readonly SettingsReplacement[],
    now: number,
  ): Promise<[landed: boolean[], untold: { error: unknown } | undefined]> {
    const landed: boolean[] = []
    let failed: { error: unknown } | undefined
    for (let from = 0; from < writes.length; from += EXPIRE_BATCH) {
      const done = await this.#stores.presence.replaceSettingsAfterExpiry(
        writes.slice(from, from + EXPIRE_BATCH),
        now,
        this.#stores.privacy,
      )
      const expiries = done.flatMap((d) => (d.expired ? [d.expired] : []))
      // counted as a write's expiry: the sweep's lateness is the janitor's alone
      if (expiries.length > 0) this.#observer.expiredByWrite?.(expiries.length)
      const told = await Promise.allSettled(
        expiries.map((change) => this.#announce({ type: 'presence', change })),
      )
      for (const result of told) {
        if (result.status === 'rejected') failed ??= { error: result.reason }
      }
      for (const d of done) landed.push(d.landed)
    }
    return [landed, failed]
  }

  /** A settings change marked in the user's history, concerning whom it concerns. */
  async #markSettings({ userId, before, after }: SettingsEvent): Promise<void> {
    const concern = before && after ? settingsConcernOf(before, after) : EVERYONE
    await this.#history.mark([userId], this.#clock.now(), [concern])
  }

  /**
   * Writes a relation of `a` and `b`, then tells of it (#relationChanged). A write that failed may
   * have landed in part (on a Redis Cluster, one user's side: RedisProfileStore #blockSteps): it
   * is told all the same, as far as the store lets it be, so that open streams read the relation
   * as stored (never more than both the old and the new one show) instead of keeping the one they
   * read before it; the failure is then answered (503) for the caller to retry.
   */
  async #relationWrite(a: UserId, b: UserId, write: () => Promise<void>): Promise<void> {
    try {
      await write()
    } catch (error) {
      await this.#relationChanged(a, b, true)
      throw error
    }
    await this.#relationChanged(a, b)
  }

  /**
   * Runs an import's privacy write; should it fail, its relation records are told all the same
   * (as #relationWrite does: some may have landed, in part) before the failure is answered.
   */
  async #importedRelations(records: readonly PrivacyRecord[], written: Promise<unknown>) {
    try {
      await written
    } catch (error) {
      // until the bus refuses one (Redis gone): a million lines are not each told in vain
      for (const r of records) {
        if (r.type === 'settings') continue
        const [a, b] = r.type === 'friends' ? [r.a, r.b] : [r.blocker, r.blocked]
        if (!(await this.#relationChanged(a, b, true))) break
      }
      throw error
    }
  }

  /**
   * Two users' friendship or block changed: marked in both histories (as settings), each mark
   * concerning the other side only, then told. `anyway`: after a failed write, each step is
   * tried, and its failure left unsaid (the write's is the one answered); whether it was told.
   */
  async #relationChanged(a: UserId, b: UserId, anyway = false): Promise<boolean> {
    const mark = this.#history.mark([a, b], this.#clock.now(), [
      relationConcern(b),
      relationConcern(a),
    ])
    if (anyway) await mark.catch(() => {})
    else await mark
    const told = this.#bus.publish({ type: 'relation', users: [a, b] })
    if (!anyway) await told
    return told.then(
      () => true,
      () => false,
    )
  }

  /** A game server's changes: published together (a Redis bus pipelines them), then counted. */
  async #serverChanges(changes: readonly PresenceChange[], players: number): Promise<void> {
    await Promise.all(changes.map((change) => this.#publish(change)))
    let ended = 0
    for (const change of changes) if (change.ended !== undefined) ended++
    if (ended > 0) this.#observer.sessionsEnded?.('explicit', ended)
    // every listed player's session was created or refreshed: a heartbeat each, as a device's
    if (players > 0) this.#observer.heartbeats?.('server', players)
  }

  /**
   * `write` (of `ids`' settings), and the stored presences of `ids` read in the same turn, just
   * before it: what the webhooks judge the settings change by (#announce's `seen`), the presence
   * as the settings were stored. Not the one they were computed from: a sign-out stored between
   * the two was told `offline` by the settings before, and hiding the user then must say nothing
   * more. Embedded, both are done at once in this turn (the memory store and SQLite answer
   * without yielding), so nothing lands between them; in fleet mode both go out together, the
   * read first (a write landing between them makes one `offline` too many, never one too few).
   * A read that fails gives none (the outbox then judges by the presence it reads later): the
   * write stands, and must still be told.
   */
  async #storedAround<T>(
    ids: readonly UserId[],
    write: () => Promise<T>,
  ): Promise<[T, UserPresence[] | undefined]> {
    const read = this.#storedPresences(ids).catch(() => undefined)
    const written = write()
    return Promise.all([written, read])
  }

  /**
   * The settings to store for users changing from `current` to `next` (core `nextSettings`),
   * computed from their presences with every session stored (#storedPresences); `swept`: as the
   * expiry stored with the write leaves them (#replaceAfterExpiry, core sweptAt).
   */
  async #nextSettings(
    ids: readonly UserId[],
    current: readonly UserSettings[],
    next: readonly Pick<UserSettings, 'visibility' | 'invisible'>[],
    swept = false,
  ): Promise<UserSettings[]> {
    const presences = await this.#storedPresences(ids)
    const now = this.#clock.now()
    return next.map((s, i) => {
      const presence = swept ? sweptAt(presences[i]!, now) : presences[i]!
      return nextSettings(current[i]!, s, presence, now)
    })
  }

  /** What each side of each block sees of the other now, to keep with the block. */
  /**
   * What each side of each block (or unblock: `isBlocked` false) sees of the other: the
   * lastOnline it saw until now, and for an unblock its instant (`since`), each side then seeing
   * the other as from now when it is online (sawAtBlockEnd).
   */
  async #blockSights(
    blocks: readonly { blocker: UserId; blocked: UserId; isBlocked: boolean }[],
  ): Promise<BlockSight[]> {
    const now = this.#clock.now()
    const seen = (viewer: UserId, target: UserId) =>
      this.lookup({ kind: 'user', userId: viewer }, [target]).then(([p]) =>
        lastOnlineSeenAt(p!, now),
      )
    return Promise.all(
      blocks.map(async ({ blocker, blocked, isBlocked }) => {
        const [blockerSaw, blockedSaw] = await Promise.all([
          seen(blocker, blocked),
          seen(blocked, blocker),
        ])
        if (isBlocked) return { blockerSaw, blockedSaw }
        const ids = [blocker, blocked]
        const [presences, settings] = await Promise.all([
          this.#stores.presence.getMany(ids, now),
          this.#stores.privacy.getSettings(ids),
        ])
        return {
          blockerSaw: sawAtBlockEnd(blockerSaw, presences[1]!, settings[1]!, now),
          blockedSaw: sawAtBlockEnd(blockedSaw, presences[0]!, settings[0]!, now),
          since: now,
        }
      }),
    )
  }

  async #relationsOf(
    viewer: Viewer,
    ids: readonly UserId[],
    values?: readonly number[],
  ): Promise<readonly Relation[] | undefined> {
    return viewer.kind === 'user'
      ? this.#stores.privacy.getRelations(viewer.userId, ids, values)
      : undefined
  }

  /**
   * Fills universe, root place and place name from the catalogue at write time too, so that
   * what is stored and published (the dashboard counts by it) already carries them, and reads
   * find nothing to change until the catalogue does. Synchronous when the place is in memory
   * (the common case): no promise to wait for.
   */
  #resolvePlace(activity: Activity): Activity | Promise<Activity> {
    if (activity.placeId === undefined) return activity
    const cached = this.#places.place(activity.placeId)
    if (cached instanceof Promise) {
      return cached.then((place) => (place ? withPlace(activity, place) : activity))
    }
    return cached ? withPlace(activity, cached) : activity
  }
}

/** Whom a change of a user's settings from `before` to `after` concerns (a history mark's). */
function settingsConcernOf(before: UserSettings, after: UserSettings): string {
  return settingsConcern(settingsAudiences(before, after), {
    before: before.invisible,
    after: after.invisible,
  })
}
