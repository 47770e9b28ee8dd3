/**
 * PostgreSQL's pglz compression format (src/common/pg_lzcompress.c), which pg_probackup uses for
 * `compress-algorithm = pglz` data pages with the PGLZ_strategy_always strategy.
 *
 * Stream: a control byte whose bits, least significant first, describe the next eight items; a 0
 * bit is one literal byte, a 1 bit a back-reference tag of 2 or 3 bytes:
 *   byte 0: high nibble = offset bits 8..11, low nibble = length - 3 (0x0F: length continues);
 *   byte 1: offset bits 0..7;
 *   byte 2 (only when the low nibble is 0x0F): length - 18.
 * Offsets count back from the current output position (1..4095), lengths are 3..273, and the
 * referenced bytes may overlap the bytes being produced. There is no header: the raw size is known
 * to the reader (BLCKSZ for pg_probackup pages).
 */
import { StrataError } from '../errors.js';

/** PGLZ_MAX_MATCH: the longest match a tag can encode (18 + 255). */
const PGLZ_MAX_MATCH = 273;
/** PGLZ_HISTORY_SIZE: how many earlier input positions the compressor remembers. */
const PGLZ_HISTORY_SIZE = 4096;
/** PGLZ_MAX_HISTORY_LISTS: the largest hash table (used for inputs of 1024 bytes or more). */
const PGLZ_MAX_HISTORY_LISTS = 8192;
/** A tag's offset has 12 bits; pglz_find_match stops at offsets of 0x0FFF and beyond. */
const MAX_OFFSET = 0x0fff;

/** PGLZ_strategy_always: compress anything, look for matches until one of 128 bytes is found. */
const MATCH_SIZE_GOOD = 128;
const MATCH_SIZE_DROP_PERCENT = 6;

/**
 * History lists as in pg_lzcompress.c: entry 0 means "no entry"; `histPrev` uses -1 for the list
 * head (the C code's NULL, distinct from entry 0). Module-level like PostgreSQL's static arrays:
 * compression is synchronous, so calls never interleave.
 */
const histStart = new Int16Array(PGLZ_MAX_HISTORY_LISTS);
const histNext = new Int16Array(PGLZ_HISTORY_SIZE + 1);
const histPrev = new Int16Array(PGLZ_HISTORY_SIZE + 1);
const histIndex = new Int32Array(PGLZ_HISTORY_SIZE + 1);
const histPos = new Int32Array(PGLZ_HISTORY_SIZE + 1);

/**
 * pglz_hist_idx of every input position: the hash of the next four bytes, or of the next byte
 * within three bytes of the end. `char` is signed on x86-64, where pg_probackup and PostgreSQL run,
 * so the bytes are hashed as signed values; the hash decides only which list a position joins, but
 * matching it keeps the output identical to PostgreSQL's.
 */
function computeHistoryIndexes(src: Uint8Array, mask: number, into: Int32Array): void {
  const length = src.length;
  for (let pos = 0; pos < length; pos++) {
    const b0 = (src[pos]! << 24) >> 24;
    if (length - pos < 4) {
      into[pos] = b0 & mask;
    } else {
      const b1 = (src[pos + 1]! << 24) >> 24;
      const b2 = (src[pos + 2]! << 24) >> 24;
      const b3 = (src[pos + 3]! << 24) >> 24;
      into[pos] = ((b0 << 6) ^ (b1 << 4) ^ (b2 << 2) ^ b3) & mask;
    }
  }
}

let historyIndexes = new Int32Array(8192);

/**
 * Compresses `src` the way PostgreSQL's pglz_compress() does with PGLZ_strategy_always, byte for
 * byte. Returns null when the result would not be smaller than the input (pglz_compress's -1),
 * which pg_probackup answers by storing the page raw.
 */
export function pglzCompress(src: Uint8Array): Buffer | null {
  const sourceLength = src.length;
  const resultMax =
    sourceLength > Math.floor(0x7fffffff / 100)
      ? Math.floor(sourceLength / 100) * 100
      : sourceLength;
  let hashSize: number;
  if (sourceLength < 128) hashSize = 512;
  else if (sourceLength < 256) hashSize = 1024;
  else if (sourceLength < 512) hashSize = 2048;
  else if (sourceLength < 1024) hashSize = 4096;
  else hashSize = PGLZ_MAX_HISTORY_LISTS;
  const mask = hashSize - 1;
  if (historyIndexes.length < sourceLength) historyIndexes = new Int32Array(sourceLength);
  const hashes = historyIndexes;
  computeHistoryIndexes(src, mask, hashes);
  // Locals, not the module bindings: the bundler makes those `var`s, reloaded on every access.
  const start = histStart;
  const next = histNext;
  const prev = histPrev;
  const index = histIndex;
  const position = histPos;
  start.fill(0, 0, hashSize);
  let histNextEntry = 1;
  let histRecycle = false;

  // Room for the loop's overshoot: one control byte and a 3-byte tag past resultMax (PGLZ_MAX_OUTPUT).
  const out = Buffer.allocUnsafe(sourceLength + 4);
  let bp = 0;
  let ctrlPos = -1;
  let ctrlByte = 0;
  let ctrlBit = 0;

  let dp = 0;
  while (dp < sourceLength) {
    if (bp >= resultMax) return null;

    // pglz_find_match: walk the hash list, newest entry first.
    let matchLength = 0;
    let matchOffset = 0;
    let goodMatch = MATCH_SIZE_GOOD;
    let entry = start[hashes[dp]!]!;
    while (entry !== 0) {
      const hp = position[entry]!;
      const thisOffset = dp - hp;
      if (thisOffset >= MAX_OFFSET) break;
      // A candidate can only replace the best match if it also matches at index matchLength;
      // testing that byte first skips most comparisons without changing the result.
      let thisLength = 0;
      if (
        matchLength < PGLZ_MAX_MATCH &&
        dp + matchLength < sourceLength &&
        src[dp + matchLength] === src[hp + matchLength]
      ) {
        while (thisLength < matchLength && src[dp + thisLength] === src[hp + thisLength])
          thisLength++;
        if (thisLength === matchLength) {
          while (
            dp + thisLength < sourceLength &&
            src[dp + thisLength] === src[hp + thisLength] &&
            thisLength < PGLZ_MAX_MATCH
          ) {
            thisLength++;
          }
        }
      }
      if (thisLength > matchLength) {
        matchLength = thisLength;
        matchOffset = thisOffset;
      }
      entry = next[entry]!;
      if (entry !== 0) {
        if (matchLength >= goodMatch) break;
        goodMatch -= ((goodMatch * MATCH_SIZE_DROP_PERCENT) / 100) | 0;
      }
    }

    // pglz_out_ctrl: a new control byte before every eighth item.
    if (ctrlBit === 0) {
      if (ctrlPos >= 0) out[ctrlPos] = ctrlByte;
      ctrlPos = bp++;
      ctrlByte = 0;
      ctrlBit = 1;
    }
    let consumed: number;
    if (matchLength > 2) {
      ctrlByte |= ctrlBit;
      if (matchLength > 17) {
        out[bp] = ((matchOffset & 0xf00) >> 4) | 0x0f;
        out[bp + 1] = matchOffset & 0xff;
        out[bp + 2] = matchLength - 18;
        bp += 3;
      } else {
        out[bp] = ((matchOffset & 0xf00) >> 4) | (matchLength - 3);
        out[bp + 1] = matchOffset & 0xff;
        bp += 2;
      }
      consumed = matchLength;
    } else {
      out[bp++] = src[dp]!;
      consumed = 1;
    }
    ctrlBit = (ctrlBit << 1) & 0xff;

    // pglz_hist_add for every consumed input byte, recycling the oldest entry once all are used.
    for (const stop = dp + consumed; dp < stop; dp++) {
      const hindex = hashes[dp]!;
      const added = histNextEntry;
      if (histRecycle) {
        const before = prev[added]!;
        const after = next[added]!;
        if (before === -1) start[index[added]!] = after;
        else next[before] = after;
        prev[after] = before;
      }
      const head = start[hindex]!;
      next[added] = head;
      prev[added] = -1;
      index[added] = hindex;
      position[added] = dp;
      prev[head] = added;
      start[hindex] = added;
      if (++histNextEntry > PGLZ_HISTORY_SIZE) {
        histNextEntry = 1;
        histRecycle = true;
      }
    }
  }
  if (ctrlPos >= 0) out[ctrlPos] = ctrlByte;
  if (bp >= resultMax) return null;
  return out.subarray(0, bp);
}

function corrupt(detail: string): StrataError {
  return new StrataError('corrupt', `pglz-compressed data is corrupt: ${detail}`);
}

/**
 * pglz_decompress() with check_complete (as pg_probackup calls it): the output must be exactly
 * `rawSize` bytes and every input byte must be consumed. Tags that reach before the start of the
 * output are rejected rather than read as garbage.
 */
export function pglzDecompress(src: Uint8Array, rawSize: number): Buffer {
  const out = Buffer.alloc(rawSize);
  const srcEnd = src.length;
  let sp = 0;
  let dp = 0;
  while (sp < srcEnd && dp < rawSize) {
    let ctrl = src[sp++]!;
    for (let item = 0; item < 8 && sp < srcEnd && dp < rawSize; item++) {
      if (ctrl & 1) {
        if (sp + 2 > srcEnd) throw corrupt(`tag truncated at input byte ${sp}`);
        let length = (src[sp]! & 0x0f) + 3;
        const offset = ((src[sp]! & 0xf0) << 4) | src[sp + 1]!;
        sp += 2;
        if (length === 18) {
          if (sp >= srcEnd) throw corrupt(`tag truncated at input byte ${sp}`);
          length += src[sp++]!;
        }
        if (offset === 0 || offset > dp) {
          throw corrupt(`back-reference offset ${offset} at output byte ${dp} is out of range`);
        }
        length = Math.min(length, rawSize - dp);
        if (offset >= length) {
          out.copyWithin(dp, dp - offset, dp - offset + length);
          dp += length;
        } else {
          for (const stop = dp + length; dp < stop; dp++) out[dp] = out[dp - offset]!;
        }
      } else {
        out[dp++] = src[sp++]!;
      }
      ctrl >>= 1;
    }
  }
  if (dp !== rawSize) throw corrupt(`decompressed to ${dp} bytes, expected ${rawSize}`);
  if (sp !== srcEnd)
    throw corrupt(`${srcEnd - sp} input bytes left over after ${rawSize} output bytes`);
  return out;
}
