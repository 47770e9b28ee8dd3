/**
 * The traditional CRC-32 (zlib / Ethernet: reflected polynomial 0xEDB88320, initial value and
 * final XOR 0xFFFFFFFF), PostgreSQL's "TRADITIONAL_CRC32" of pg_crc.h. pg_probackup 2.0.22 to
 * 2.0.24 used it instead of CRC-32C for file CRCs, so Strata needs it only to validate backups made
 * by those versions (catalog-format §9). Byte-at-a-time is enough for that legacy path; the hot
 * CRC is crc32c.ts.
 */
const POLY = 0xedb88320;

const table: Int32Array = (() => {
  const result = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    result[n] = c;
  }
  return result;
})();

/** Running state: start from `crc32Init`, feed with `crc32Update`, finish with `crc32Final`. */
export const crc32Init = 0xffffffff;

export function crc32Update(state: number, data: Uint8Array): number {
  let crc = state | 0;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

export function crc32Final(state: number): number {
  return (state ^ 0xffffffff) >>> 0;
}

/** CRC-32 of a whole buffer. */
export function crc32(data: Uint8Array): number {
  return crc32Final(crc32Update(crc32Init, data));
}
