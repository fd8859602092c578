import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Place } from '../core/catalogue.js'
import type { Activity, UserPresence } from '../core/presence.js'
import type { UserId } from '../core/user-id.js'
import { ManualClock } from './clock.js'
import { PlaceCatalogue, withPlace } from './place-catalogue.js'

const crossroads: Place = { placeId: '1818', universeId: '13058', rootPlaceId: '1800', name: 'X' }

function inPlace(activity: Partial<Activity>): UserPresence {
  return {
    userId: '1' as UserId,
    lastOnline: 0,
    sessions: [
      {
        userId: '1' as UserId,
        key: 'app:Web',
        source: 'app',
        deviceType: 'Web',
        startedAt: 0,
        updatedAt: 0,
        expiresAt: 1e12,
        activity: { kind: 'inGame', placeId: '1818', ...activity },
      },
    ],
  }
}

/** A catalogue over a map the test changes, counting the store reads. */
function setup(trustMs?: number) {
  const places = new Map<string, Place>()
  const reads: string[] = []
  const clock = new ManualClock()
  const catalogue = new PlaceCatalogue(
    {
      getPlace: async (id) => {
        reads.push(id)
        return places.get(id)
      },
    },
    clock,
    trustMs,
  )
  return { places, reads, clock, catalogue }
}

test('the catalogue wins for a catalogued place; an uncatalogued one keeps what was sent', async () => {
  const { places, catalogue, clock } = setup()
  const sent = [inPlace({ location: 'Game', universeId: '5' })]
  assert.equal(await catalogue.resolve(sent, clock.now()), sent)
  places.set('1818', crossroads)
  catalogue.forget('1818')
  const [resolved] = await catalogue.resolve(sent, clock.now())
  assert.deepEqual(resolved!.sessions[0]!.activity, {
    kind: 'inGame',
    placeId: '1818',
    universeId: '13058',
    rootPlaceId: '1800',
    location: 'X',
  })
  assert.equal(sent[0]!.sessions[0]!.activity.location, 'Game', 'the input is not changed')
})

test('all cached and already carried: the same array, synchronously, with no store read', async () => {
  const { places, reads, catalogue, clock } = setup()
  places.set('1818', crossroads)
  const carried = [
    inPlace({ universeId: '13058', rootPlaceId: '1800', location: 'X' }),
    { userId: '2' as UserId, lastOnline: undefined, sessions: [] },
  ]
  await catalogue.resolve(carried, clock.now())
  reads.length = 0
  assert.equal(catalogue.resolve(carried, clock.now()), carried)
  assert.deepEqual(reads, [])
})

test('a place is read once, remembered even when absent, and read again after forget or a minute', async () => {
  const { places, reads, catalogue, clock } = setup()
  const sent = [inPlace({}), inPlace({})]
  await catalogue.resolve(sent, clock.now())
  await catalogue.resolve(sent, clock.now())
  assert.deepEqual(reads, ['1818'])
  places.set('1818', crossroads)
  catalogue.forget()
  assert.equal((await catalogue.resolve(sent, clock.now()))[1]!.sessions[0]!.activity.location, 'X')
  places.set('1818', { ...crossroads, name: 'Y' })
  clock.advance(60_000)
  assert.equal((await catalogue.resolve(sent, clock.now()))[0]!.sessions[0]!.activity.location, 'Y')
  assert.deepEqual(reads, ['1818', '1818', '1818'])
})

test('a load that started before a change does not keep what it read', async () => {
  const places = new Map<string, Place>([['1818', crossroads]])
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  let reads = 0
  const clock = new ManualClock()
  const catalogue = new PlaceCatalogue(
    {
      getPlace: async (id) => {
        const place = places.get(id)
        if (reads++ === 0) await gate
        return place
      },
    },
    clock,
  )
  const slow = catalogue.resolve([inPlace({})], clock.now())
  places.set('1818', { ...crossroads, name: 'Renamed' })
  catalogue.forget('1818')
  release()
  await slow
  const [after] = await catalogue.resolve([inPlace({})], clock.now())
  assert.equal(after!.sessions[0]!.activity.location, 'Renamed')
  assert.equal(reads, 2)
})

test('only sessions written before the last change heard (and a margin) are checked', async () => {
  const { places, reads, catalogue, clock } = setup()
  places.set('1818', crossroads)
  clock.advance(10_000)
  const stale = (updatedAt: number): UserPresence[] => {
    const presence = inPlace({ universeId: '13058', rootPlaceId: '1800', location: 'Old' })
    return [{ ...presence, sessions: [{ ...presence.sessions[0]!, updatedAt }] }]
  }
  // written after this node started (plus the margin): stored with the catalogue of its time
  const later = stale(clock.now())
  assert.equal(catalogue.resolve(later, clock.now()), later)
  assert.deepEqual(reads, [])
  // a change is heard: sessions written before it, or within the margin after, are checked
  catalogue.forget('1818')
  const [checked] = await catalogue.resolve(stale(clock.now() + 4_000), clock.now())
  assert.equal(checked!.sessions[0]!.activity.location, 'X')
  const trusted = stale(clock.now() + 6_000)
  assert.equal(catalogue.resolve(trusted, clock.now()), trusted)
})

test('a write reads its place once, from memory after, again after forget or a minute', async () => {
  const { places, reads, catalogue, clock } = setup()
  places.set('1818', crossroads)
  assert.deepEqual(await catalogue.place('1818'), crossroads)
  // from memory: no store read, and no promise (no tick) either
  assert.deepEqual(catalogue.place('1818'), crossroads)
  assert.equal(await catalogue.place('404'), undefined)
  assert.equal(catalogue.place('404'), undefined)
  assert.deepEqual(reads, ['1818', '404'])
  // a change heard: read again
  places.set('1818', { ...crossroads, name: 'Renamed' })
  catalogue.forget('1818')
  assert.equal((await catalogue.place('1818'))?.name, 'Renamed')
  // a change not heard (a lost announcement): read again once the minute is over
  places.set('1818', { ...crossroads, name: 'Unheard' })
  clock.advance(59_999)
  assert.equal((await catalogue.place('1818'))?.name, 'Renamed')
  clock.advance(1)
  assert.equal((await catalogue.place('1818'))?.name, 'Unheard')
  assert.deepEqual(reads, ['1818', '404', '1818', '1818'])
})

test('the trust time is a setting (PRESENCED_PLACE_TTL): a place read stays in use that long', async () => {
  const { places, reads, catalogue, clock } = setup(600_000)
  places.set('1818', crossroads)
  assert.deepEqual(await catalogue.place('1818'), crossroads)
  places.set('1818', { ...crossroads, name: 'Unheard' })
  clock.advance(599_999)
  assert.deepEqual(catalogue.place('1818'), crossroads, 'from memory, past the default minute')
  clock.advance(1)
  assert.equal((await catalogue.place('1818'))?.name, 'Unheard')
  assert.deepEqual(reads, ['1818', '1818'])
})

test('withPlace: the members of the spread, in its order, for every shape of activity', () => {
  const activities: Activity[] = [
    { kind: 'inGame', placeId: '1818' },
    { kind: 'inGame', location: 'Game', placeId: '1818' },
    { kind: 'inGame', location: 'Game', placeId: '1818', gameId: 'g' },
    { kind: 'inGame', placeId: '1818', universeId: '1', rootPlaceId: '2', location: 'Old' },
    { location: 'first', kind: 'inStudio', placeId: '1818' },
    { kind: 'online', titleId: '7', placement: 'full', titleState: 'active', placeId: '1818' },
  ]
  for (const activity of activities) {
    const spread = {
      ...activity,
      universeId: crossroads.universeId,
      rootPlaceId: crossroads.rootPlaceId,
      location: crossroads.name,
    }
    const placed = withPlace(activity, crossroads)
    assert.deepEqual(placed, spread)
    assert.deepEqual(Object.keys(placed), Object.keys(spread))
    assert.equal(JSON.stringify(placed), JSON.stringify(spread))
  }
})
