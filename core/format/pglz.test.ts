import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { BLCKSZ, RELSEG_SIZE, pageHeaderProblem, parsePageHeader, pgChecksumPage } from './page.js';
import { pglzCompress, pglzDecompress } from './pglz.js';
import { probackupFixtureDir } from '../testing/pgBinaries.js';

/** DELTA backup made by pg_probackup 2.5.16 with --compress-algorithm=pglz (see the fixture README). */
const PGLZ_BACKUP = `${probackupFixtureDir}/catalog/backups/demo/TP11RH`;
const fixtures = join(import.meta.dirname, 'fixtures');

interface PageRecord {
  path: string;
  segno: number;
  block: number;
  compressedSize: number;
  payload: Buffer;
}

/** The page records of every pglz data file of the backup: {uint32 block, int32 size, payload}... */
function pglzPageRecords(): PageRecord[] {
  const records: PageRecord[] = [];
  const list = readFileSync(join(PGLZ_BACKUP, 'backup_content.control'), 'utf8');
  for (const line of list.split('\n')) {
    if (line.trim() === '') continue;
    const entry = JSON.parse(line) as Record<string, string>;
    if (entry.is_datafile !== '1' || entry.compress_alg !== 'pglz' || Number(entry.size) <= 0)
      continue;
    const path = entry.path!;
    const file = readFileSync(join(PGLZ_BACKUP, 'database', path));
    expect(file.length, path).toBe(Number(entry.size));
    for (let pos = 0; pos < file.length;) {
      const block = file.readUInt32LE(pos);
      const compressedSize = file.readInt32LE(pos + 4);
      records.push({
        path,
        segno: Number(entry.segno),
        block,
        compressedSize,
        payload: file.subarray(pos + 8, pos + 8 + compressedSize),
      });
      pos += 8 + compressedSize;
    }
  }
  return records;
}

describe('pglzDecompress on a real pg_probackup pglz backup', () => {
  const records = pglzPageRecords();

  it('finds the compressed pages of the three changed relations', () => {
    expect(new Set(records.map((record) => record.path))).toEqual(
      new Set(['base/16384/16386', 'base/16384/1259', 'base/16384/1249']),
    );
    expect(
      records.filter((record) => record.compressedSize > 0 && record.compressedSize < BLCKSZ),
    ).toHaveLength(170);
  });

  it('restores every compressed page to a valid 8192-byte page whose checksum matches', () => {
    for (const record of records) {
      const where = `${record.path} block ${record.block}`;
      const page =
        record.compressedSize === BLCKSZ ? record.payload : pglzDecompress(record.payload, BLCKSZ);
      expect(page.length, where).toBe(BLCKSZ);
      expect(pageHeaderProblem(page), where).toBeNull();
      const absoluteBlock = record.segno * RELSEG_SIZE + record.block;
      expect(pgChecksumPage(page, absoluteBlock), where).toBe(parsePageHeader(page).checksum);
    }
  });

  it('compresses each restored page to exactly the bytes pg_probackup wrote (PGLZ_strategy_always)', () => {
    for (const record of records.filter((r) => r.compressedSize < BLCKSZ)) {
      const page = pglzDecompress(record.payload, BLCKSZ);
      const recompressed = pglzCompress(page);
      expect(recompressed, `${record.path} block ${record.block}`).not.toBeNull();
      expect(
        Buffer.compare(recompressed!, record.payload),
        `${record.path} block ${record.block}`,
      ).toBe(0);
    }
  });
});

describe('pglzCompress', () => {
  const realPages = [
    ...['pg17-pg_class-heap-blocks0-3.bin', 'pg17-pg_class_oid_index-btree-blocks0-3.bin'].flatMap(
      (name) => {
        const file = readFileSync(join(fixtures, name));
        return Array.from({ length: file.length / BLCKSZ }, (_, i) =>
          file.subarray(i * BLCKSZ, (i + 1) * BLCKSZ),
        );
      },
    ),
    readFileSync(join(fixtures, 'pg_control.17')),
  ];

  it('round-trips real pages and makes them smaller', () => {
    for (const page of realPages) {
      const compressed = pglzCompress(page);
      expect(compressed).not.toBeNull();
      expect(compressed!.length).toBeLessThan(page.length);
      expect(pglzDecompress(compressed!, page.length).equals(page)).toBe(true);
    }
  });

  it('compresses an all-zero page to a few dozen bytes', () => {
    const compressed = pglzCompress(new Uint8Array(BLCKSZ));
    expect(compressed!.length).toBeLessThan(100);
    expect(pglzDecompress(compressed!, BLCKSZ).equals(Buffer.alloc(BLCKSZ))).toBe(true);
  });

  it('gives up on incompressible data, as pglz_compress returns -1', () => {
    let x = 12345;
    const noise = Uint8Array.from({ length: BLCKSZ }, () => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x >>> 24;
    });
    expect(pglzCompress(noise)).toBeNull();
    expect(pglzCompress(new Uint8Array(0))).toBeNull();
  });

  it('round-trips short and long inputs with long overlapping matches', () => {
    for (const input of [
      Buffer.from('abcabcabcabcabcabcabcabcabcabcabcabcabcabc'),
      Buffer.from('x'.repeat(1000) + 'y'.repeat(300) + 'xy'.repeat(2000)),
      Buffer.from(Array.from({ length: 20000 }, (_, i) => `row ${i % 700};`).join('')),
    ]) {
      const compressed = pglzCompress(input);
      expect(compressed).not.toBeNull();
      expect(pglzDecompress(compressed!, input.length).equals(input)).toBe(true);
    }
  });
});

describe('pglzDecompress on damaged input', () => {
  const page = readFileSync(join(fixtures, 'pg17-pg_class-heap-blocks0-3.bin')).subarray(0, BLCKSZ);
  const compressed = pglzCompress(page)!;

  function corruptError(action: () => unknown): StrataError {
    try {
      action();
    } catch (error) {
      if (error instanceof StrataError) return error;
      throw error;
    }
    throw new Error('expected a StrataError');
  }

  it('rejects a truncated stream', () => {
    const error = corruptError(() =>
      pglzDecompress(compressed.subarray(0, compressed.length - 40), BLCKSZ),
    );
    expect(error.code).toBe('corrupt');
    expect(error.message).toMatch(/pglz-compressed data is corrupt/);
  });

  it('rejects a stream that yields a different size than expected', () => {
    expect(corruptError(() => pglzDecompress(compressed, BLCKSZ + 1)).message).toMatch(
      /decompressed to 8192 bytes, expected 8193/,
    );
    expect(corruptError(() => pglzDecompress(compressed, BLCKSZ / 2)).message).toMatch(
      /input bytes left over/,
    );
  });

  it('rejects a back-reference before the start of the output', () => {
    // Control byte 0x01: the first item is a tag, offset 0x0FF with nothing decoded yet.
    expect(corruptError(() => pglzDecompress(Uint8Array.of(0x01, 0x00, 0xff), 3)).message).toMatch(
      /offset 255 at output byte 0 is out of range/,
    );
  });

  it('decodes a hand-made stream with an overlapping back-reference', () => {
    // literal 'a', literal 'b', tag (offset 2, length 3 + 3 = 6) → "ab" + "ababab".
    expect(pglzDecompress(Uint8Array.of(0x04, 0x61, 0x62, 0x03, 0x02), 8).toString()).toBe(
      'abababab',
    );
  });
});
