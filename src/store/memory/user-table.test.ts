import assert from 'node:assert/strict'
import { test } from 'node:test'
import { UserTable } from './user-table.js'

test('int64 ids map to stable slots and back, exactly', () => {
  const table = new UserTable()
  const ids = [
    '1',
    '4294967295',
    '4294967296',
    '9007199254740991',
    '9007199254740992',
    '9007199254740993',
    '9223372036854775807',
    '18446744073709551615',
  ]
  const slots = ids.map((id) => table.findOrAdd(id))
  assert.deepEqual(slots, [0, 1, 2, 3, 4, 5, 6, 7])
  assert.deepEqual(
    slots.map((slot) => table.idOf(slot)),
    ids,
  )
  assert.deepEqual(
    ids.map((id) => table.find(id)),
    slots,
  )
  assert.equal(table.findOrAdd('9007199254740993'), 5)
  assert.equal(table.size, 8)
})

test('unknown and non-canonical ids are not found, never aliased', () => {
  const table = new UserTable()
  table.findOrAdd('1')
  table.findOrAdd('16')
  for (const id of ['2', '01', ' 1', '1 ', '+1', '1.0', '1e0', '0x10', '', 'abc', '-1']) {
    assert.equal(table.find(id), -1, JSON.stringify(id))
  }
  for (const id of ['01', '0x10', '', '18446744073709551616', '99999999999999999999']) {
    assert.equal(table.findOrAdd(id), -1, JSON.stringify(id))
  }
  assert.equal(table.size, 2)
})

test('columns start empty and survive growth', () => {
  const table = new UserTable()
  const n = 50_000
  for (let i = 0; i < n; i++) {
    const slot = table.findOrAdd(String(9007199254740000 + i * 7919))
    assert.equal(table.lastOnline(slot), undefined)
    assert.equal(table.head(slot), -1)
    table.setLastOnline(slot, i)
    table.setHead(slot, i % 3)
  }
  assert.equal(table.size, n)
  for (let i = 0; i < n; i += 997) {
    const slot = table.find(String(9007199254740000 + i * 7919))
    assert.equal(slot, i)
    assert.equal(table.lastOnline(slot), i)
    assert.equal(table.head(slot), i % 3)
  }
  assert.equal(table.find('9007199254740001'), -1)
})

test('findMany answers as find does, ids sharing their low 32 bits included', () => {
  const table = new UserTable()
  // ids that differ only above bit 32 share a bucket key: the row's high half must decide
  const sameLow = (k: number) => ((BigInt(k) << 32n) | 7n).toString()
  for (let k = 0; k < 3000; k++) table.findOrAdd(sameLow(k))
  for (let i = 0; i < 3000; i++) table.findOrAdd(String(1_000_000_007 + i * 104_729))
  table.findOrAdd('18446744073709551615')
  const ids = [
    ...Array.from({ length: 4000 }, (_, k) => sameLow(k)),
    ...Array.from({ length: 3100 }, (_, i) => String(1_000_000_007 + i * 104_729)),
    '0',
    '18446744073709551615',
    '18446744073709551616',
    '01',
    '',
    '12a',
    '99999999999999999999',
  ]
  const rows = new Int32Array(ids.length)
  table.findMany(ids, rows)
  assert.deepEqual(
    [...rows],
    ids.map((id) => table.find(id)),
  )
  assert.equal(rows.filter((row) => row >= 0).length, 3000 + 3000 + 1)
})

test('findMany by the values of the ids answers as by their digits', () => {
  const table = new UserTable()
  const sameLow = (k: number) => ((BigInt(k) << 32n) | 7n).toString()
  for (let k = 0; k < 3000; k++) table.findOrAdd(sameLow(k))
  for (let i = 0; i < 3000; i++) table.findOrAdd(String(1_000_000_007 + i * 104_729))
  // known and unknown ids, ids alike in their low 32 bits, up to the largest a parser gives
  const ids = [
    ...Array.from({ length: 3100 }, (_, k) => sameLow(k)),
    ...Array.from({ length: 3100 }, (_, i) => String(1_000_000_007 + i * 104_729)),
    '1',
    '999999999999999',
  ]
  const byDigits = new Int32Array(ids.length)
  table.findMany(ids, byDigits)
  const byValues = new Int32Array(ids.length)
  table.findMany(ids, byValues, ids.map(Number))
  assert.deepEqual([...byValues], [...byDigits])
  assert.equal(byValues.filter((row) => row >= 0).length, 3000 + 3000)
})

test('findMany answers every length, four ids a step and the rest, known and not', () => {
  const table = new UserTable()
  const sameLow = (k: number) => ((BigInt(k) << 32n) | 9n).toString()
  for (let k = 0; k < 40; k++) table.findOrAdd(sameLow(k))
  for (let i = 0; i < 500; i++) table.findOrAdd(String(7_000_000_000 + i))
  const pool = [
    ...Array.from({ length: 45 }, (_, k) => sameLow(k)),
    ...Array.from({ length: 520 }, (_, i) => String(7_000_000_000 + i)),
    'x',
    '007',
  ]
  let seed = 7
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31)
  for (let length = 0; length <= 13; length++) {
    for (let round = 0; round < 20; round++) {
      const ids = Array.from({ length }, () => pool[next() % pool.length]!)
      const expected = ids.map((id) => table.find(id))
      const rows = new Int32Array(length).fill(123)
      table.findMany(ids, rows)
      assert.deepEqual([...rows], expected, `by digits: ${ids.join(',')}`)
      const valid = ids.filter((id) => /^[1-9]\d{0,14}$/.test(id))
      const byValues = new Int32Array(valid.length)
      table.findMany(valid, byValues, valid.map(Number))
      assert.deepEqual(
        [...byValues],
        valid.map((id) => table.find(id)),
        `by values: ${valid}`,
      )
    }
  }
})

test('headsOf gives each row its first session, -1 for an unknown row', () => {
  const table = new UserTable()
  for (let i = 0; i < 10; i++) table.findOrAdd(String(500 + i))
  for (let row = 0; row < 10; row += 2) table.setHead(row, 1000 + row)
  const rows = Int32Array.from([0, 1, -1, 2, 9, 8, -1, 4, 3])
  const heads = new Int32Array(rows.length).fill(77)
  table.headsOf(rows, rows.length, heads)
  assert.deepEqual([...heads], [1000, -1, -1, 1002, -1, 1008, -1, 1004, -1])
  // only the first n
  const few = new Int32Array(rows.length).fill(77)
  table.headsOf(rows, 5, few)
  assert.deepEqual([...few], [1000, -1, -1, 1002, -1, 77, 77, 77, 77])
})
