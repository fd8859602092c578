export type Column = Float64Array | Int32Array | Uint32Array | Uint8Array

/** A copy of `array` with room for `capacity` elements (new elements are 0). */
export function grown<T extends Column>(array: T, capacity: number): T {
  const next = new (array.constructor as new (length: number) => T)(capacity)
  next.set(array)
  return next
}

/** A copy of `buffer` of `byteLength` bytes (new bytes are 0). */
export function grownBuffer(buffer: ArrayBuffer, byteLength: number): ArrayBuffer {
  const next = new ArrayBuffer(byteLength)
  new Uint8Array(next).set(new Uint8Array(buffer))
  return next
}

/** The next capacity when `needed` elements must fit: grows by half, so copies stay rare. */
export function nextCapacity(current: number, needed: number): number {
  return Math.max(needed, Math.ceil(current * 1.5), 16)
}
