import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageHeaderEntry } from '../../catalog/types.js';
import { BLCKSZ, RELSEG_SIZE, pgChecksumPage } from '../../format/page.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { restoreDataFilePages } from './dataFile.js';
import type { DataFileSource } from './dataFile.js';

const SEGNO = 1;

/** A heap-like page with a sane header, the given LSN, a body of `fill` and a correct checksum. */
function validPage(blockNo: number, lsn: bigint, fill: number): Buffer {
  const page = Buffer.alloc(BLCKSZ, fill);
  page.fill(0, 0, 24);
  page.writeUInt32LE(Number(lsn >> 32n), 0);
  page.writeUInt32LE(Number(lsn & 0xffffffffn), 4);
  page.writeUInt16LE(24, 12);
  page.writeUInt16LE(BLCKSZ - 64, 14);
  page.writeUInt16LE(BLCKSZ, 16);
  page.writeUInt16LE(BLCKSZ | 4, 18);
  page.writeUInt16LE(pgChecksumPage(page, SEGNO * RELSEG_SIZE + blockNo), 8);
  return page;
}

function lsnOf(page: Buffer): bigint {
  return (BigInt(page.readUInt32LE(0)) << 32n) | BigInt(page.readUInt32LE(4));
}

let dir: string;
let fileNo = 0;
const storage = new LocalStorage();

/** A raw (uncompressed) 2.4.0+ stored file whose page_header_map entries carry LSN and checksum. */
function source(backupId: string, stopLsn: bigint, pages: Array<[number, Buffer]>): DataFileSource {
  const parts: Buffer[] = [];
  const headers: PageHeaderEntry[] = [];
  let pos = 0;
  for (const [block, page] of pages) {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(block, 0);
    header.writeInt32LE(BLCKSZ, 4);
    headers.push({
      block,
      pos,
      lsn: lsnOf(page),
      checksum: pgChecksumPage(page, SEGNO * RELSEG_SIZE + block),
    });
    parts.push(header, page);
    pos += 8 + BLCKSZ;
  }
  headers.push({ block: 0, pos, lsn: 0n, checksum: 0 });
  const path = join(dir, `stored-${fileNo++}`);
  writeFileSync(path, Buffer.concat(parts));
  return {
    backupId,
    path,
    compressAlg: 'none',
    programVersionNum: 20516,
    loadHeaders: () => Promise.resolve(headers),
    stopLsn,
  };
}

function existingFile(pages: Buffer[]): string {
  const path = join(dir, `existing-${fileNo++}`);
  writeFileSync(path, Buffer.concat(pages));
  return path;
}

function block(file: Buffer, blockNo: number): Buffer {
  return file.subarray(blockNo * BLCKSZ, (blockNo + 1) * BLCKSZ);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-existing-pages-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('incremental restore of one data file', () => {
  it("checksum mode keeps pages whose checksum and LSN equal the backup's, rewrites the others", async () => {
    const backupPages = [0, 1, 2, 3].map((b) => validPage(b, 0x100n + BigInt(b), 0x10 + b));
    const corrupt = Buffer.from(backupPages[3]!);
    corrupt.writeUInt8(corrupt.readUInt8(5000) ^ 0xff, 5000);
    const path = existingFile([
      backupPages[0]!,
      backupPages[1]!,
      // Same LSN, other content: another checksum.
      validPage(2, 0x102n, 0x77),
      // Identical header, damaged body: invalid, so never kept.
      corrupt,
      validPage(4, 0x900n, 0x55),
      validPage(5, 0x901n, 0x56),
    ]);
    const result = await restoreDataFilePages(storage, {
      destinationPath: path,
      displayPath: 'base/5/16400.1',
      mode: 0o600,
      nBlocks: 4,
      sources: [
        source(
          'FULL01',
          0x1000n,
          backupPages.map((p, b) => [b, p]),
        ),
      ],
      newestFirst: true,
      signal: undefined,
      existing: { mode: 'checksum', limitLsn: 0x1000n, checksumsEnabled: true, segno: SEGNO },
    });
    expect(result).toEqual({ writtenBytes: 2 * BLCKSZ, pagesWritten: 2, pagesKept: 2 });
    const restored = readFileSync(path);
    expect(restored.length).toBe(4 * BLCKSZ);
    for (let b = 0; b < 4; b++) expect(block(restored, b).equals(backupPages[b]!)).toBe(true);
  });

  it('checksum mode does not trust pages from after the backup ended', async () => {
    const page = validPage(0, 0x2000n, 0x21);
    const path = existingFile([page]);
    const result = await restoreDataFilePages(storage, {
      destinationPath: path,
      displayPath: 'base/5/16401.1',
      mode: 0o600,
      nBlocks: 1,
      sources: [source('FULL01', 0x1000n, [[0, page]])],
      newestFirst: true,
      signal: undefined,
      existing: { mode: 'checksum', limitLsn: 0x1000n, checksumsEnabled: true, segno: SEGNO },
    });
    expect(result.pagesKept).toBe(0);
    expect(result.pagesWritten).toBe(1);
  });

  it('lsn mode keeps valid pages up to the shift LSN against members that ended by it', async () => {
    const full = [0, 1, 2, 3].map((b) => validPage(b, 0x100n, 0x30 + b));
    const delta = validPage(1, 0x2800n, 0x41);
    const existing = [
      validPage(0, 0x800n, 0x50),
      validPage(1, 0x900n, 0x51),
      validPage(2, 0x2000n, 0x52),
      Buffer.alloc(BLCKSZ),
    ];
    const path = existingFile(existing);
    const result = await restoreDataFilePages(storage, {
      destinationPath: path,
      displayPath: 'base/5/16402.1',
      mode: 0o600,
      nBlocks: 5,
      sources: [
        source('DELTA1', 0x3000n, [[1, delta]]),
        source(
          'FULL01',
          0x1000n,
          full.map((p, b) => [b, p]),
        ),
      ],
      newestFirst: true,
      signal: undefined,
      existing: { mode: 'lsn', limitLsn: 0x1000n, checksumsEnabled: true, segno: SEGNO },
    });
    expect(result).toEqual({ writtenBytes: 3 * BLCKSZ, pagesWritten: 3, pagesKept: 1 });
    const restored = readFileSync(path);
    expect(restored.length).toBe(5 * BLCKSZ);
    expect(block(restored, 0).equals(existing[0]!)).toBe(true);
    expect(block(restored, 1).equals(delta)).toBe(true);
    expect(block(restored, 2).equals(full[2]!)).toBe(true);
    expect(block(restored, 3).equals(full[3]!)).toBe(true);
    expect(block(restored, 4).equals(Buffer.alloc(BLCKSZ))).toBe(true);
  });
});
