/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the CRC of PostgreSQL's pg_control and
 * WAL records and of pg_probackup's file lists.
 *
 * Slicing-by-16: sixteen table look-ups per sixteen input bytes, the input read as four 32-bit
 * little-endian words through an Int32Array view (one load per word instead of four byte loads
 * and shifts). The sixteen 256-entry tables are one flat Int32Array copied into a local: the
 * bundler turns module-level `const`s into `var`s, which V8 cannot treat as constants, and one
 * table pointer fits in a register where sixteen do not. About 1.3 GB/s against 0.7 GB/s for the
 * byte-wise slicing-by-8 this replaced.
 */
const POLY = 0x82f63b78;

/** Word reads assume little-endian memory order; big-endian hosts take the byte-wise path. */
const hostIsLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Below this length creating a typed-array view costs more than it saves. */
const WORD_PATH_MIN_BYTES = 64;

/** Table k (entries k*256 .. k*256+255) is the CRC of a byte followed by k zero bytes. */
const TABLES: Int32Array = (() => {
  const tables = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    tables[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[n]!;
    for (let k = 1; k < 16; k++) {
      c = tables[c & 0xff]! ^ (c >>> 8);
      tables[k * 256 + n] = c;
    }
  }
  return tables;
})();

/** Running state: start from `crc32cInit`, feed with `crc32cUpdate`, finish with `crc32cFinal`. */
export const crc32cInit = 0xffffffff;

export function crc32cUpdate(state: number, data: Uint8Array): number {
  const t = TABLES;
  const length = data.length;
  let crc = state | 0;
  let i = 0;
  if (length >= WORD_PATH_MIN_BYTES && hostIsLittleEndian) {
    const head = (4 - (data.byteOffset & 3)) & 3;
    for (; i < head; i++) crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
    const wordCount = ((length - head) >>> 4) << 2;
    const words = new Int32Array(data.buffer, data.byteOffset + head, wordCount);
    for (let k = 0; k < wordCount; k += 4) {
      const a = words[k]! ^ crc;
      const b = words[k + 1]!;
      const c = words[k + 2]!;
      const d = words[k + 3]!;
      crc =
        t[0xf00 | (a & 0xff)]! ^
        t[0xe00 | ((a >>> 8) & 0xff)]! ^
        t[0xd00 | ((a >>> 16) & 0xff)]! ^
        t[0xc00 | (a >>> 24)]! ^
        t[0xb00 | (b & 0xff)]! ^
        t[0xa00 | ((b >>> 8) & 0xff)]! ^
        t[0x900 | ((b >>> 16) & 0xff)]! ^
        t[0x800 | (b >>> 24)]! ^
        t[0x700 | (c & 0xff)]! ^
        t[0x600 | ((c >>> 8) & 0xff)]! ^
        t[0x500 | ((c >>> 16) & 0xff)]! ^
        t[0x400 | (c >>> 24)]! ^
        t[0x300 | (d & 0xff)]! ^
        t[0x200 | ((d >>> 8) & 0xff)]! ^
        t[0x100 | ((d >>> 16) & 0xff)]! ^
        t[d >>> 24]!;
    }
    i = head + wordCount * 4;
  }
  for (; i < length; i++) crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

export function crc32cFinal(state: number): number {
  return (state ^ 0xffffffff) >>> 0;
}

/** CRC-32C of a whole buffer. */
export function crc32c(data: Uint8Array): number {
  return crc32cFinal(crc32cUpdate(crc32cInit, data));
}
