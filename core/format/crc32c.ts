/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the CRC of PostgreSQL's pg_control and
 * WAL records and of pg_probackup's file lists. Slicing-by-8 tables: eight table look-ups per
 * eight input bytes instead of one per byte.
 */
const POLY = 0x82f63b78;

const tables: Uint32Array[] = (() => {
  const result = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0 = result[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t0[n]!;
    for (let t = 1; t < 8; t++) {
      c = (t0[c & 0xff]! ^ (c >>> 8)) >>> 0;
      result[t]![n] = c;
    }
  }
  return result;
})();

const [T0, T1, T2, T3, T4, T5, T6, T7] = tables as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

/** Running state: start from `crc32cInit`, feed with `crc32cUpdate`, finish with `crc32cFinal`. */
export const crc32cInit = 0xffffffff;

export function crc32cUpdate(state: number, data: Uint8Array): number {
  let crc = state >>> 0;
  let i = 0;
  const length = data.length;
  const end8 = length - (length % 8);
  while (i < end8) {
    const lo = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ crc;
    crc =
      T7[lo & 0xff]! ^
      T6[(lo >>> 8) & 0xff]! ^
      T5[(lo >>> 16) & 0xff]! ^
      T4[lo >>> 24]! ^
      T3[data[i + 4]!]! ^
      T2[data[i + 5]!]! ^
      T1[data[i + 6]!]! ^
      T0[data[i + 7]!]!;
    i += 8;
  }
  while (i < length) crc = T0[(crc ^ data[i++]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

export function crc32cFinal(state: number): number {
  return (state ^ 0xffffffff) >>> 0;
}

/** CRC-32C of a whole buffer. */
export function crc32c(data: Uint8Array): number {
  return crc32cFinal(crc32cUpdate(crc32cInit, data));
}
