/**
 * Reads `column[rows[i] * stride + offset]` for the first `n` of `rows` (-1 reads row 0), to
 * bring them into cache before a pass that works on them, and returns them or-ed (for the caller
 * to keep, so that the reads are not dropped). At a million users each read misses the cache;
 * how many misses overlap is bound by how many instructions the CPU holds at once, and V8 checks
 * the arrays again at each access: so nothing else is in the loop, eight rows an iteration
 * (bench:xbox: 0.93x the CPU a batch of the same passes without it).
 */
export function touchRows(
  column: Int32Array,
  rows: Int32Array,
  n: number,
  stride: number,
  offset: number,
): number {
  let seen = 0
  let i = 0
  for (; i + 8 <= n; i += 8) {
    const r0 = rows[i]!
    const r1 = rows[i + 1]!
    const r2 = rows[i + 2]!
    const r3 = rows[i + 3]!
    const r4 = rows[i + 4]!
    const r5 = rows[i + 5]!
    const r6 = rows[i + 6]!
    const r7 = rows[i + 7]!
    seen |=
      column[(r0 & ~(r0 >> 31)) * stride + offset]! |
      column[(r1 & ~(r1 >> 31)) * stride + offset]! |
      column[(r2 & ~(r2 >> 31)) * stride + offset]! |
      column[(r3 & ~(r3 >> 31)) * stride + offset]! |
      column[(r4 & ~(r4 >> 31)) * stride + offset]! |
      column[(r5 & ~(r5 >> 31)) * stride + offset]! |
      column[(r6 & ~(r6 >> 31)) * stride + offset]! |
      column[(r7 & ~(r7 >> 31)) * stride + offset]!
  }
  for (; i < n; i++) {
    const row = rows[i]!
    seen |= column[(row & ~(row >> 31)) * stride + offset]!
  }
  return seen
}
