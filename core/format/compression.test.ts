import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import {
  COMPRESS_LEVEL_RANGES,
  compressPage,
  decompressPage,
  loadPageCodec,
  tryDecompressPage,
  type PageCompressAlgorithm,
} from './compression.js';
import { BLCKSZ, checkDataPage } from './page.js';

const fixtures = join(import.meta.dirname, 'fixtures');
const algorithms: PageCompressAlgorithm[] = ['zlib', 'pglz', 'lz4', 'zstd'];

/** Real pages of fresh `initdb -k` clusters: heap and btree, PostgreSQL 17 and 13 (blocks 0.. of segment 0). */
function realPages(): Array<{ name: string; blockNo: number; page: Buffer }> {
  const pages: Array<{ name: string; blockNo: number; page: Buffer }> = [];
  for (const name of [
    'pg17-pg_class-heap-blocks0-3.bin',
    'pg17-pg_class_oid_index-btree-blocks0-3.bin',
    'pg13-pg_attribute-heap-blocks0-1.bin',
  ]) {
    const file = readFileSync(join(fixtures, name));
    for (let blockNo = 0; blockNo * BLCKSZ < file.length; blockNo++) {
      pages.push({ name, blockNo, page: file.subarray(blockNo * BLCKSZ, (blockNo + 1) * BLCKSZ) });
    }
  }
  return pages;
}

function expectCorrupt(run: () => unknown, fragment: string): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(StrataError);
  expect((thrown as StrataError).code).toBe('corrupt');
  expect((thrown as StrataError).message).toContain(fragment);
}

describe('page codecs', () => {
  it('refuses lz4 and zstd before their codec is loaded', () => {
    const page = realPages()[0]!.page;
    for (const algorithm of ['lz4', 'zstd'] as const) {
      expect(() => compressPage(page, algorithm, 1)).toThrow(/before loadPageCodec/);
      expect(() => decompressPage(Buffer.alloc(10), algorithm, 'block 0')).toThrow(
        /before loadPageCodec/,
      );
    }
  });

  it('round-trips every real page with every algorithm, smaller than a page', async () => {
    for (const algorithm of algorithms) await loadPageCodec(algorithm);
    const pages = realPages();
    expect(pages.length).toBe(10);
    for (const { name, blockNo, page } of pages) {
      // The fixture pages are valid, so the round trip must keep them valid byte for byte.
      expect(checkDataPage(page, blockNo, true).ok).toBe(true);
      for (const algorithm of algorithms) {
        const payload = compressPage(page, algorithm, 1);
        expect(payload, `${algorithm} ${name} block ${blockNo}`).toBeDefined();
        expect(payload!.length).toBeLessThan(BLCKSZ);
        const restored = decompressPage(payload!, algorithm, `block ${blockNo} of ${name}`);
        expect(restored.equals(page), `${algorithm} ${name} block ${blockNo}`).toBe(true);
        expect(tryDecompressPage(payload!, algorithm)).toEqual({ page });
      }
    }
  });

  it('writes each documented payload format', async () => {
    for (const algorithm of algorithms) await loadPageCodec(algorithm);
    const page = realPages()[0]!.page;
    // zlib: an RFC 1950 stream at the given level, as pg_probackup's compress2 writes it.
    const zlib = compressPage(page, 'zlib', 6)!;
    expect(zlib[0]).toBe(0x78);
    expect(zlib.equals(deflateSync(page, { level: 6 }))).toBe(true);
    expect(inflateSync(zlib).equals(page)).toBe(true);
    // zstd: one frame, magic 0xFD2FB528, content size 8192 (single segment, 2-byte field + 256).
    const zstd = compressPage(page, 'zstd', 3)!;
    expect(zstd.readUInt32LE(0)).toBe(0xfd2fb528);
    expect(zstd[4]! >> 6).toBe(1);
    expect(zstd.readUInt16LE(5) + 256).toBe(BLCKSZ);
    // Levels differ in output, proving the level reaches the codec.
    expect(compressPage(page, 'zstd', 19)!.equals(compressPage(page, 'zstd', 1)!)).toBe(false);
    // lz4: a bare block; its first token's literal length nibble starts the data, no size prefix.
    const lz4 = compressPage(page, 'lz4', 1)!;
    expect(lz4.readUInt32LE(0)).not.toBe(BLCKSZ);
  });

  it('stores an incompressible page raw and never compresses with "none"', async () => {
    for (const algorithm of algorithms) await loadPageCodec(algorithm);
    const noise = randomBytes(BLCKSZ);
    for (const algorithm of algorithms) expect(compressPage(noise, algorithm, 1)).toBeUndefined();
    expect(compressPage(realPages()[0]!.page, 'none', 1)).toBeUndefined();
    // zlib level 0 only stores, which is never smaller than the page.
    expect(compressPage(realPages()[0]!.page, 'zlib', 0)).toBeUndefined();
  });

  it('reports damaged payloads as corrupt, naming the block', async () => {
    for (const algorithm of algorithms) await loadPageCodec(algorithm);
    const page = realPages()[1]!.page;
    const where = 'block 1 of backup file "/b/base/1/1259"';
    for (const algorithm of algorithms) {
      const payload = compressPage(page, algorithm, 1)!;
      const truncated = payload.subarray(0, payload.length - 7);
      expectCorrupt(() => decompressPage(truncated, algorithm, where), where);
      const detail = tryDecompressPage(truncated, algorithm);
      expect('detail' in detail && detail.detail).toMatch(
        new RegExp(`^cannot decompress the ${algorithm} page: `),
      );
    }
    expectCorrupt(
      () => decompressPage(Buffer.alloc(100, 0x41), 'zstd', where),
      `${where} (zstd): not a zstd frame`,
    );
    expectCorrupt(
      () => decompressPage(Buffer.alloc(100, 0x41), 'none', where),
      'a stored size of 100 bytes with compress_alg "none"',
    );
  });

  it('refuses payloads that decompress to anything but one page', async () => {
    for (const algorithm of algorithms) await loadPageCodec(algorithm);
    const half = realPages()[0]!.page.subarray(0, BLCKSZ / 2);
    expectCorrupt(
      () => decompressPage(deflateSync(half), 'zlib', 'block 3'),
      'block 3 (zlib): page decompressed to 4096 bytes, expected 8192',
    );
    expect(tryDecompressPage(deflateSync(half), 'zlib')).toEqual({
      detail: 'page decompressed to 4096 bytes, expected 8192',
    });
    expectCorrupt(
      () => decompressPage(compressPage(half, 'zstd', 1)!, 'zstd', 'block 3'),
      'block 3 (zstd): the frame holds 4096 bytes, not 8192',
    );
    expectCorrupt(
      () => decompressPage(compressPage(half, 'lz4', 1)!, 'lz4', 'block 3'),
      'block 3 (lz4): ',
    );
    expectCorrupt(
      () => decompressPage(compressPage(half, 'pglz', 1)!, 'pglz', 'block 3'),
      'block 3 (pglz): ',
    );
  });
});

describe('zstd frame checks', () => {
  it('refuses frames of another content size, with trailing bytes or a dictionary', async () => {
    await loadPageCodec('zstd');
    const page = realPages()[2]!.page;
    const frame = compressPage(page, 'zstd', 1)!;
    expectCorrupt(
      () => decompressPage(Buffer.concat([frame, Buffer.from([0, 0])]), 'zstd', 'b'),
      `the frame spans ${frame.length} bytes of a ${frame.length + 2}-byte payload`,
    );
    const otherSize = Buffer.from(frame);
    otherSize.writeUInt16LE(otherSize.readUInt16LE(5) + 1, 5);
    expectCorrupt(
      () => decompressPage(otherSize, 'zstd', 'b'),
      'the frame holds 8193 bytes, not 8192',
    );
    const withDictionary = Buffer.from(frame);
    withDictionary[4] = withDictionary[4]! | 0x01;
    expectCorrupt(
      () => decompressPage(withDictionary, 'zstd', 'b'),
      'the frame needs a dictionary',
    );
  });
});

describe('COMPRESS_LEVEL_RANGES', () => {
  it("keeps pg_probackup's 0..9 for its algorithms and 1..19 for zstd", () => {
    expect(COMPRESS_LEVEL_RANGES.zlib).toEqual({ min: 0, max: 9 });
    expect(COMPRESS_LEVEL_RANGES.pglz).toEqual({ min: 0, max: 9 });
    expect(COMPRESS_LEVEL_RANGES.zstd).toEqual({ min: 1, max: 19 });
  });
});
