import assert from 'node:assert/strict'
import { test } from 'node:test'
import { NearRows, splitHalves, splitId } from './near-rows.js'

/*
 * The near cache's rows (near-rows.ts): found by the id's int64, exactly, with evictions and
 * deletions that leave every other id found.
 */

test('ids split into their int64 halves exactly, above 2^53 too', () => {
  const cases = [
    '1',
    '0',
    '4294967295',
    '4294967296',
    '9007199254740991',
    '9007199254740992',
    '9007199254740993',
    '123456789012345',
    '1234567890123456',
    '9223372036854775807',
    '18446744073709551615',
  ]
  for (const id of cases) {
    assert.ok(splitId(id), id)
    const [hi, lo] = splitHalves()
    assert.equal((BigInt(hi) << 32n) + BigInt(lo), BigInt(id), id)
  }
  for (const id of [
    '',
    '01',
    '-1',
    '1.5',
    '1e3',
    ' 1',
    '18446744073709551616',
    '123456789012345678901',
  ]) {
    assert.equal(splitId(id), false, JSON.stringify(id))
  }
})

test('ids a double would round to one another are told apart', () => {
  const rows = new NearRows(16)
  const ids = ['9007199254740992', '9007199254740993', '9223372036854775806', '9223372036854775807']
  const taken = ids.map((id) => rows.insert(id))
  assert.equal(new Set(taken).size, ids.length)
  ids.forEach((id, i) => assert.equal(rows.find(id), taken[i], id))
  rows.delete('9007199254740993')
  assert.equal(rows.find('9007199254740993'), -1)
  assert.equal(rows.find('9007199254740992'), taken[0])
  assert.equal(rows.find('9223372036854775807'), taken[3])
})

test('text that is not an id takes no row and finds none', () => {
  const rows = new NearRows(4)
  assert.equal(rows.insert('007'), -1)
  assert.equal(rows.insert('7'), 0)
  assert.equal(rows.find('007'), -1)
  assert.equal(rows.find('7'), 0)
  assert.equal(rows.size, 1)
})

test('at the cap, the oldest row goes, and its id is no longer found', () => {
  const rows = new NearRows(3)
  for (const id of ['11', '12', '13']) rows.insert(id)
  assert.equal(rows.size, 3)
  const row = rows.insert('14')
  assert.equal(rows.evicted, row)
  assert.equal(rows.find('11'), -1)
  rows.insert('15')
  assert.equal(rows.find('12'), -1)
  for (const id of ['13', '14', '15']) assert.ok(rows.find(id) >= 0, id)
  assert.equal(rows.size, 3)
  // an id held again takes no new row
  assert.equal(rows.insert('15'), rows.find('15'))
  assert.equal(rows.evicted, -1)
  // a freed row is given out before any eviction
  const freed = rows.delete('14')
  assert.equal(rows.insert('16'), freed)
  assert.equal(rows.evicted, -1)
  for (const id of ['13', '15', '16']) assert.ok(rows.find(id) >= 0, id)
})

test('with many collisions, inserts, deletes and evictions leave the table as a Map would be', () => {
  // a small table, ids from a narrow range and ids above 2^53: long probe runs that wrap around
  let seed = 7
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32
  for (const max of [1, 5, 64]) {
    const rows = new NearRows(max)
    const model = new Map<string, number>()
    const idOf = () => {
      const n = Math.floor(random() * max * 3)
      return random() < 0.5 ? String(n + 1) : String(2n ** 62n + BigInt(n))
    }
    for (let step = 0; step < 20_000; step++) {
      const id = idOf()
      if (random() < 0.3) {
        const row = rows.delete(id)
        assert.equal(row, model.has(id) ? model.get(id) : -1)
        model.delete(id)
      } else {
        const had = model.get(id)
        const row = rows.insert(id)
        if (had !== undefined) assert.equal(row, had)
        else {
          if (rows.evicted >= 0) {
            const gone = [...model].find(([, r]) => r === rows.evicted)
            assert.ok(gone, 'an evicted row was taken')
            model.delete(gone[0])
          } else assert.ok(model.size < max)
          assert.ok(![...model.values()].includes(row), 'a row given out twice')
          model.set(id, row)
        }
      }
      assert.equal(rows.size, model.size)
      if (step % 97 === 0) {
        for (const [held, row] of model) assert.equal(rows.find(held), row, held)
        for (let k = 0; k < 5; k++) {
          const other = idOf()
          assert.equal(rows.find(other), model.get(other) ?? -1, other)
        }
        // findMany finds what find does, held ids, others and text that is no id among them
        const asked = [...model.keys(), idOf(), '007', idOf(), '', '18446744073709551616']
        const found = new Int32Array(asked.length)
        rows.findMany(asked, found)
        asked.forEach((id, i) => assert.equal(found[i], rows.find(id), id))
      }
    }
  }
})

test('clear frees every row', () => {
  const rows = new NearRows(8)
  for (let i = 1; i <= 8; i++) rows.insert(String(i))
  rows.clear()
  assert.equal(rows.size, 0)
  for (let i = 1; i <= 8; i++) assert.equal(rows.find(String(i)), -1)
  assert.equal(rows.insert('9'), 0)
})
