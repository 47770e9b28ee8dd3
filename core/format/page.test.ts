import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLsn } from './lsn.js';
import {
  BLCKSZ,
  RELSEG_SIZE,
  absoluteBlockNo,
  checkDataPage,
  isZeroPage,
  pageHeaderProblem,
  parsePageHeader,
  pgChecksumPage,
} from './page.js';

const fixtures = join(import.meta.dirname, 'fixtures');

/**
 * Pages of a fresh `initdb -k` cluster (data checksums on), blocks 0.. of segment 0, so each
 * page's absolute block number is its index in the file.
 */
const pageFixtures = [
  'pg17-pg_class-heap-blocks0-3.bin',
  'pg17-pg_class_oid_index-btree-blocks0-3.bin',
  'pg13-pg_attribute-heap-blocks0-1.bin',
];

function pagesOf(fileName: string): Buffer[] {
  const file = readFileSync(join(fixtures, fileName));
  return Array.from({ length: file.length / BLCKSZ }, (_, block) =>
    file.subarray(block * BLCKSZ, (block + 1) * BLCKSZ),
  );
}

function copyOf(page: Uint8Array): Buffer {
  return Buffer.from(page);
}

/** A sane empty heap page (pd_lower = header size, pd_upper = pd_special = BLCKSZ) to break field by field. */
function headerOnlyPage(fields: {
  lower?: number;
  upper?: number;
  special?: number;
  flags?: number;
  pageSizeVersion?: number;
}): Buffer {
  const page = Buffer.alloc(BLCKSZ);
  page.writeUInt32LE(0, 0);
  page.writeUInt32LE(0x1000028, 4);
  page.writeUInt16LE(fields.flags ?? 0, 10);
  page.writeUInt16LE(fields.lower ?? 24, 12);
  page.writeUInt16LE(fields.upper ?? 8192, 14);
  page.writeUInt16LE(fields.special ?? 8192, 16);
  page.writeUInt16LE(fields.pageSizeVersion ?? 0x2004, 18);
  return page;
}

describe('parsePageHeader', () => {
  it('reads PageHeaderData of a real heap page', () => {
    const [block0] = pagesOf('pg17-pg_class-heap-blocks0-3.bin');
    expect(parsePageHeader(block0!)).toEqual({
      lsn: parseLsn('0/157A8B8'),
      checksum: 3798,
      flags: 5,
      lower: 212,
      upper: 7744,
      special: 8192,
      pageSize: 8192,
      layoutVersion: 4,
      pruneXid: 0,
    });
  });

  it('combines pd_lsn as xlogid << 32 | xrecoff', () => {
    const page = headerOnlyPage({});
    page.writeUInt32LE(0x2a, 0);
    page.writeUInt32LE(0x1600168, 4);
    expect(parsePageHeader(page).lsn).toBe(parseLsn('2A/1600168'));
  });

  it('reads the special space of a btree page', () => {
    const [meta] = pagesOf('pg17-pg_class_oid_index-btree-blocks0-3.bin');
    const header = parsePageHeader(meta!);
    expect([header.lower, header.upper, header.special]).toEqual([72, 8176, 8176]);
  });
});

describe('pgChecksumPage', () => {
  it.each(pageFixtures)('equals the stored pd_checksum of every page of %s', (fileName) => {
    const pages = pagesOf(fileName);
    expect(pages.length).toBeGreaterThan(1);
    pages.forEach((page, block) => {
      expect(pgChecksumPage(page, block), `block ${block}`).toBe(page.readUInt16LE(8));
    });
  });

  it('ignores the stored pd_checksum and does not modify the page', () => {
    const [page] = pagesOf('pg17-pg_class-heap-blocks0-3.bin');
    const copy = copyOf(page!);
    copy.writeUInt16LE(0xbeef, 8);
    const before = Buffer.from(copy);
    expect(pgChecksumPage(copy, 0)).toBe(3798);
    expect(copy.equals(before)).toBe(true);
  });

  it('mixes in the block number, so a page moved to another block fails', () => {
    const [page] = pagesOf('pg17-pg_class-heap-blocks0-3.bin');
    expect(pgChecksumPage(page!, 1)).not.toBe(3798);
    expect(pgChecksumPage(page!, RELSEG_SIZE)).not.toBe(3798);
  });

  it('gives the same result for a page at an unaligned buffer offset', () => {
    const [, page] = pagesOf('pg17-pg_class-heap-blocks0-3.bin');
    const holder = Buffer.alloc(BLCKSZ + 3);
    page!.copy(holder, 3);
    expect(pgChecksumPage(holder.subarray(3), 1)).toBe(33810);
  });

  it('computes absolute block numbers across 1 GiB segments', () => {
    expect(absoluteBlockNo(0, 7)).toBe(7);
    expect(absoluteBlockNo(2, 5)).toBe(2 * 131072 + 5);
  });
});

describe('checkDataPage', () => {
  it.each(pageFixtures)('accepts every real page of %s with its LSN', (fileName) => {
    pagesOf(fileName).forEach((page, block) => {
      expect(checkDataPage(page, block, true)).toEqual({
        ok: true,
        lsn: parsePageHeader(page).lsn,
        isZero: false,
        checksum: page.readUInt16LE(8),
      });
    });
  });

  it('accepts an all-zero page as a zero page with LSN 0', () => {
    const zero = Buffer.alloc(BLCKSZ);
    expect(isZeroPage(zero)).toBe(true);
    expect(checkDataPage(zero, 12, true)).toEqual({ ok: true, lsn: 0n, isZero: true, checksum: 0 });
  });

  it('detects one flipped byte anywhere in the page, in pg_probackup wording', () => {
    const [, page] = pagesOf('pg17-pg_class-heap-blocks0-3.bin');
    for (const offset of [0, 20, 400, 4000, 8191]) {
      const damaged = copyOf(page!);
      damaged[offset]! ^= 0x01;
      const expected = pgChecksumPage(damaged, 1);
      expect(expected, `offset ${offset}`).not.toBe(33810);
      expect(checkDataPage(damaged, 1, true)).toEqual({
        ok: false,
        detail: `page verification failed, calculated checksum 33810 but expected ${expected}`,
      });
    }
  });

  it('reports a page checked under the wrong block number', () => {
    const [, page] = pagesOf('pg17-pg_class-heap-blocks0-3.bin');
    const result = checkDataPage(page!, 1 + RELSEG_SIZE, true);
    expect(result.ok).toBe(false);
  });

  it('does not verify checksums when the cluster has none, but still returns the computed value', () => {
    const [, page] = pagesOf('pg17-pg_class-heap-blocks0-3.bin');
    const damaged = copyOf(page!);
    damaged[5000]! ^= 0xff;
    expect(checkDataPage(damaged, 1, false)).toEqual({
      ok: true,
      lsn: parseLsn('0/1662F78'),
      isZero: false,
      checksum: pgChecksumPage(damaged, 1),
    });
  });

  it('rejects an insane header even without checksums', () => {
    const page = headerOnlyPage({ lower: 5 });
    expect(checkDataPage(page, 0, false)).toEqual({
      ok: false,
      detail: 'page header invalid, pd_lower 5 is less than page header size 24',
    });
  });
});

describe('pageHeaderProblem', () => {
  it('accepts sane headers, including a btree special space', () => {
    expect(pageHeaderProblem(headerOnlyPage({}))).toBeNull();
    expect(
      pageHeaderProblem(headerOnlyPage({ lower: 72, upper: 8176, special: 8176, flags: 7 })),
    ).toBeNull();
  });

  it('does not check the page layout version', () => {
    expect(pageHeaderProblem(headerOnlyPage({ pageSizeVersion: 0x2005 }))).toBeNull();
  });

  it.each([
    [
      { pageSizeVersion: 0x1004 },
      'page header invalid, page size 4096 is not equal to block size 8192',
    ],
    [{ lower: 5 }, 'page header invalid, pd_lower 5 is less than page header size 24'],
    [{ lower: 300, upper: 200 }, 'page header invalid, pd_lower 300 is greater than pd_upper 200'],
    [
      { upper: 8192, special: 8176 },
      'page header invalid, pd_upper 8192 is greater than pd_special 8176',
    ],
    [
      { upper: 8200, special: 8200 },
      'page header invalid, pd_special 8200 is greater than block size 8192',
    ],
    [
      { upper: 8100, special: 8180 },
      'page header invalid, pd_special 8180 is misaligned, expected 8184',
    ],
    [{ flags: 0x0008 }, 'page header invalid, pd_flags mask contain illegal bits'],
  ])('reports %o as "%s"', (fields, message) => {
    expect(pageHeaderProblem(headerOnlyPage(fields))).toBe(message);
  });

  it('reports the first failing check when several fail, in pg_probackup order', () => {
    expect(pageHeaderProblem(headerOnlyPage({ lower: 5, flags: 0x80 }))).toBe(
      'page header invalid, pd_lower 5 is less than page header size 24',
    );
  });
});
