import { deflateSync, inflateSync } from 'node:zlib';
import { StrataError, errorText } from '../errors.js';
import { BLCKSZ } from './page.js';
import { pglzCompress, pglzDecompress } from './pglz.js';

/**
 * Page compression of backup data files (catalog-format §7.3.5). `zlib` and `pglz` are
 * pg_probackup's; `lz4` and `zstd` are Strata's own (pg_probackup refuses such backups with its
 * "Invalid compress algorithm" error, never misreads them). Payload formats:
 *
 * - zlib: an RFC 1950 stream (what pg_probackup's `compress2` writes; first byte 0x78).
 * - pglz: PostgreSQL's pglz with PGLZ_strategy_always, no header.
 * - lz4: one LZ4 block (the LZ4 block format, no frame, no size prefix); its uncompressed size is
 *   always BLCKSZ.
 * - zstd: one Zstandard frame (RFC 8878) whose Frame_Content_Size is BLCKSZ, no dictionary.
 *
 * The lz4 and zstd codecs are npm packages loaded on first use (`loadPageCodec`), so commands
 * that never meet them (archive_command above all) do not pay for loading them.
 */
export type PageCompressAlgorithm = 'none' | 'zlib' | 'pglz' | 'lz4' | 'zstd';

interface Lz4Binding {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Uint8Array): Buffer;
}

interface ZstdBinding {
  compress(data: Uint8Array, level?: number): Uint8Array;
  decompress(data: Uint8Array): Uint8Array;
}

/** lz4-napi frames a block with its uncompressed length as a little-endian uint32 (lz4_flex's compress_prepend_size). */
const LZ4_SIZE_PREFIX_BYTES = 4;
/** RFC 8878 §3.1.1: a Zstandard frame starts with the little-endian magic number 0xFD2FB528. */
const ZSTD_MAGIC = 0xfd2fb528;
/** RFC 8878 §3.1.1.2: Frame_Header_Descriptor bits. */
const ZSTD_FCS_FLAG_SHIFT = 6;
const ZSTD_SINGLE_SEGMENT_FLAG = 0x20;
const ZSTD_RESERVED_FLAG = 0x08;
const ZSTD_CHECKSUM_FLAG = 0x04;
const ZSTD_DICTIONARY_ID_FLAG_MASK = 0x03;
/** RFC 8878 §3.1.1.4: Block_Header is 3 bytes: Last_Block (bit 0), Block_Type (bits 1–2), Block_Size (bits 3–23). */
const ZSTD_BLOCK_HEADER_BYTES = 3;
const ZSTD_BLOCK_TYPE_RLE = 1;
const ZSTD_BLOCK_TYPE_RESERVED = 3;
const ZSTD_CONTENT_CHECKSUM_BYTES = 4;

/**
 * lz4-napi loads a native addon from its per-platform npm package, which no bundle can hold: named
 * through a variable, the import is left for run time by every bundler (the CLI, the Electron
 * build, tests that bundle a command) instead of failing on the `.node` file.
 */
const LZ4_PACKAGE = 'lz4-napi';

let lz4: Lz4Binding | undefined;
let zstd: ZstdBinding | undefined;

/** Compression levels each algorithm accepts (`--compress-level`). */
export const COMPRESS_LEVEL_RANGES: Record<PageCompressAlgorithm, { min: number; max: number }> = {
  // pg_probackup's range for every algorithm it knows; pglz and `none` ignore the value.
  none: { min: 0, max: 9 },
  zlib: { min: 0, max: 9 },
  pglz: { min: 0, max: 9 },
  // lz4_flex has one speed; the value is recorded and ignored.
  lz4: { min: 0, max: 9 },
  // zstd's levels 20–22 ("ultra") only widen the window, which an 8 KiB page never fills.
  zstd: { min: 1, max: 19 },
};

/** Loads the codec of `algorithm` once per thread; a no-op for the built-in ones. */
export async function loadPageCodec(algorithm: PageCompressAlgorithm): Promise<void> {
  try {
    if (algorithm === 'lz4' && !lz4) {
      const imported = (await import(LZ4_PACKAGE)) as Lz4Binding & { default?: Lz4Binding };
      lz4 = imported.default ?? imported;
    } else if (algorithm === 'zstd' && !zstd) {
      zstd = await import('@cloudpss/zstd/wasm');
    }
  } catch (error) {
    const packageName = algorithm === 'lz4' ? 'lz4-napi' : '@cloudpss/zstd';
    throw new StrataError(
      'config',
      `Cannot load the ${algorithm} codec (npm package ${packageName}): ${errorText(error)}. ` +
        'Reinstall Strata with its dependencies, or use --compress-algorithm=zlib',
      { cause: error },
    );
  }
}

function loadedLz4(): Lz4Binding {
  if (!lz4) throw new StrataError('internal', 'The lz4 codec is used before loadPageCodec("lz4")');
  return lz4;
}

function loadedZstd(): ZstdBinding {
  if (!zstd)
    throw new StrataError('internal', 'The zstd codec is used before loadPageCodec("zstd")');
  return zstd;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The compressed form of one BLCKSZ page, or undefined when it would not be smaller than the page
 * (or the algorithm is `none`): the page is then stored raw.
 */
export function compressPage(
  page: Uint8Array,
  algorithm: PageCompressAlgorithm,
  level: number,
): Buffer | undefined {
  let compressed: Buffer | null;
  switch (algorithm) {
    case 'none':
      return undefined;
    case 'zlib':
      compressed = deflateSync(page, { level });
      break;
    case 'pglz':
      compressed = pglzCompress(page);
      break;
    case 'lz4':
      compressed = loadedLz4().compressSync(asBuffer(page)).subarray(LZ4_SIZE_PREFIX_BYTES);
      break;
    case 'zstd':
      compressed = asBuffer(loadedZstd().compress(page, level));
      break;
  }
  return compressed !== null && compressed.length < BLCKSZ ? compressed : undefined;
}

/**
 * Walks the frame's header and blocks (RFC 8878 §3.1.1) so that decompression never sizes its
 * output from unchecked bytes: the payload must be exactly one frame stating BLCKSZ content bytes.
 */
function zstdFrameProblem(payload: Uint8Array): string | undefined {
  const view = asBuffer(payload);
  if (view.length < 6 || view.readUInt32LE(0) !== ZSTD_MAGIC) return 'not a zstd frame';
  const descriptor = view[4]!;
  if (descriptor & ZSTD_RESERVED_FLAG) return 'the frame header sets its reserved bit';
  const singleSegment = (descriptor & ZSTD_SINGLE_SEGMENT_FLAG) !== 0;
  const fcsFlag = descriptor >> ZSTD_FCS_FLAG_SHIFT;
  const dictionaryIdBytes = [0, 1, 2, 4][descriptor & ZSTD_DICTIONARY_ID_FLAG_MASK]!;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  let position = 5 + (singleSegment ? 0 : 1);
  if (dictionaryIdBytes > 0) return 'the frame needs a dictionary';
  if (fcsBytes === 0) return 'the frame does not state its content size';
  if (position + fcsBytes > view.length) return 'the frame header is truncated';
  let contentSize: number;
  if (fcsBytes === 1) contentSize = view[position]!;
  else if (fcsBytes === 2) contentSize = view.readUInt16LE(position) + 256;
  else if (fcsBytes === 4) contentSize = view.readUInt32LE(position);
  else contentSize = Number(view.readBigUInt64LE(position));
  if (contentSize !== BLCKSZ) return `the frame holds ${contentSize} bytes, not ${BLCKSZ}`;
  position += fcsBytes;
  for (;;) {
    if (position + ZSTD_BLOCK_HEADER_BYTES > view.length)
      return 'the frame ends inside a block header';
    const header = view.readUIntLE(position, ZSTD_BLOCK_HEADER_BYTES);
    position += ZSTD_BLOCK_HEADER_BYTES;
    const blockType = (header >> 1) & 0x03;
    if (blockType === ZSTD_BLOCK_TYPE_RESERVED) return 'the frame has a block of the reserved type';
    position += blockType === ZSTD_BLOCK_TYPE_RLE ? 1 : header >>> 3;
    if (header & 1) break;
  }
  if (descriptor & ZSTD_CHECKSUM_FLAG) position += ZSTD_CONTENT_CHECKSUM_BYTES;
  if (position !== view.length) {
    return `the frame spans ${position} bytes of a ${view.length}-byte payload`;
  }
  return undefined;
}

function decompressOrReason(
  payload: Uint8Array,
  algorithm: PageCompressAlgorithm,
): { page: Buffer } | { reason: string; decoded: boolean } {
  let page: Buffer;
  try {
    switch (algorithm) {
      case 'none':
        return {
          reason: `a stored size of ${payload.length} bytes with compress_alg "none" (a raw page has ${BLCKSZ})`,
          decoded: false,
        };
      case 'zlib':
        page = inflateSync(payload, { maxOutputLength: BLCKSZ });
        break;
      case 'pglz':
        page = pglzDecompress(payload, BLCKSZ);
        break;
      case 'lz4': {
        const framed = Buffer.allocUnsafe(LZ4_SIZE_PREFIX_BYTES + payload.length);
        framed.writeUInt32LE(BLCKSZ, 0);
        framed.set(payload, LZ4_SIZE_PREFIX_BYTES);
        page = loadedLz4().uncompressSync(framed);
        break;
      }
      case 'zstd': {
        const codec = loadedZstd();
        const problem = zstdFrameProblem(payload);
        if (problem !== undefined) return { reason: problem, decoded: false };
        page = asBuffer(codec.decompress(payload));
        break;
      }
    }
  } catch (error) {
    if (error instanceof StrataError && error.code === 'internal') throw error;
    return { reason: errorText(error), decoded: false };
  }
  if (page.length !== BLCKSZ) {
    return {
      reason: `page decompressed to ${page.length} bytes, expected ${BLCKSZ}`,
      decoded: true,
    };
  }
  return { page };
}

/**
 * Decompression that reports a damaged payload as text (`cannot decompress the zlib page: …`, or
 * `page decompressed to 100 bytes, expected 8192`), for validators that collect problems instead
 * of stopping at the first.
 */
export function tryDecompressPage(
  payload: Uint8Array,
  algorithm: PageCompressAlgorithm,
): { page: Buffer } | { detail: string } {
  const result = decompressOrReason(payload, algorithm);
  if ('page' in result) return result;
  if (result.decoded) return { detail: result.reason };
  return { detail: `cannot decompress the ${algorithm} page: ${result.reason}` };
}

/**
 * The BLCKSZ page a compressed payload holds. Anything else (undecodable bytes, another length) is
 * StrataError('corrupt') naming `where` (e.g. `block 7 of backup file "…"`).
 */
export function decompressPage(
  payload: Uint8Array,
  algorithm: PageCompressAlgorithm,
  where: string,
): Buffer {
  const result = decompressOrReason(payload, algorithm);
  if ('page' in result) return result.page;
  throw new StrataError('corrupt', `Cannot decompress ${where} (${algorithm}): ${result.reason}`);
}
