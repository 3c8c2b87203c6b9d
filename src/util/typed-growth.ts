// Typed arrays hold numbers without a header per value; these grow them as rows are appended.

type TypedArray = Float64Array | Uint32Array | Int32Array | Uint16Array | Uint8Array;

/** `array` if it holds `length` values, else a copy at least twice as long (new values zero). */
export function withRoom<T extends TypedArray>(array: T, length: number): T {
  if (length <= array.length) return array;
  const grown = new (array.constructor as new (length: number) => T)(Math.max(length, array.length * 2, 16));
  grown.set(array);
  return grown;
}
