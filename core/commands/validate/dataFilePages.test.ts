import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { PageHeaderEntry } from '../../catalog/types.js';
import { crc32 } from '../../format/crc32.js';
import { crc32c } from '../../format/crc32c.js';
import { parseLsn } from '../../format/lsn.js';
import { BLCKSZ, RELSEG_SIZE, pgChecksumPage } from '../../format/page.js';
import type { ReadHandle } from '../../storage/storage.js';
import { checkDataFilePages } from './dataFilePages.js';
import type { DataFileCheck, DataFileReport } from './dataFilePages.js';
import { SequentialCrcReader } from './sequentialReader.js';

/** A ReadHandle over bytes in memory. */
function memoryHandle(bytes: Buffer): ReadHandle {
  return {
    read: async (buffer, position, length = buffer.length) => {
      const end = Math.min(bytes.length, position + length);
      if (position >= end) return 0;
      bytes.copy(buffer, 0, position, end);
      return end - position;
    },
    close: async () => undefined,
  };
}

/** A sane heap-like page with LSN `lsn` and a valid checksum for absolute block `absBlockNo`. */
function makePage(absBlockNo: number, lsn: bigint, fill: number): Buffer {
  const page = Buffer.alloc(BLCKSZ);
  page.writeUInt32LE(Number(lsn >> 32n), 0);
  page.writeUInt32LE(Number(lsn & 0xffffffffn), 4);
  page.writeUInt16LE(28, 12); // pd_lower: header plus one line pointer
  page.writeUInt16LE(8000, 14); // pd_upper
  page.writeUInt16LE(BLCKSZ, 16); // pd_special
  page.writeUInt16LE(BLCKSZ | 4, 18); // pd_pagesize_version: 8192, layout 4
  page.fill(fill, 8000);
  page.writeUInt16LE(pgChecksumPage(page, absBlockNo), 8);
  return page;
}

interface Built {
  file: Buffer;
  headers: PageHeaderEntry[];
}

/** A 2.4.0+ backup data file of the given payloads, with its page_header_map entries. */
function buildFile(
  records: { block: number; payload: Buffer; lsn: bigint; checksum: number }[],
): Built {
  const parts: Buffer[] = [];
  const headers: PageHeaderEntry[] = [];
  let pos = 0;
  for (const record of records) {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(record.block, 0);
    header.writeInt32LE(record.payload.length, 4);
    parts.push(header, record.payload);
    headers.push({ lsn: record.lsn, block: record.block, pos, checksum: record.checksum });
    pos += 8 + record.payload.length;
  }
  headers.push({ lsn: 0n, block: 0, pos, checksum: 0 });
  return { file: Buffer.concat(parts), headers };
}

function baseCheck(overrides: Partial<DataFileCheck>): DataFileCheck {
  return {
    fullPath: '/catalog/backups/demo/X/database/base/1/1234',
    relPath: 'base/1/1234',
    segno: 0,
    compressAlg: 'zlib',
    checksumVersion: 1,
    stopLsn: parseLsn('0/5000000'),
    programVersionNum: 20516,
    headers: undefined,
    sizeBytes: 0,
    ...overrides,
  };
}

async function run(check: DataFileCheck, file: Buffer, crcKind: 'crc32c' | 'crc32' = 'crc32c') {
  const report: DataFileReport = { problems: [], warnings: [] };
  // A tiny size hint makes every record cross reads, which the reader must stitch together.
  const crc = await checkDataFilePages(
    check,
    new SequentialCrcReader(memoryHandle(file), crcKind, 7),
    report,
  );
  return { crc, report };
}

describe('checkDataFilePages with a page_header_map', () => {
  const lsn = parseLsn('0/4000000');
  const page0 = makePage(RELSEG_SIZE + 3, lsn, 1);
  const page1 = makePage(RELSEG_SIZE + 9, lsn, 2);
  const records = [
    { block: 3, payload: deflateSync(page0, { level: 1 }), lsn, checksum: page0.readUInt16LE(8) },
    { block: 9, payload: page1, lsn, checksum: page1.readUInt16LE(8) },
  ];

  it('accepts zlib and raw pages of segment 1 and returns the CRC-32C of the whole file', async () => {
    const { file, headers } = buildFile(records);
    const { crc, report } = await run(
      baseCheck({ headers, sizeBytes: file.length, segno: 1 }),
      file,
    );
    expect(report).toEqual({ problems: [], warnings: [] });
    expect(crc).toBe(crc32c(file));
  });

  it('names the block whose checksum does not match its absolute block number', async () => {
    const { file, headers } = buildFile(records);
    const { report } = await run(baseCheck({ headers, sizeBytes: file.length, segno: 0 }), file);
    expect(report.problems).toHaveLength(2);
    expect(report.problems[0]).toMatch(
      /^Corruption detected in file "\/catalog\/backups\/demo\/X\/database\/base\/1\/1234", block 3: page verification failed, calculated checksum \d+ but expected \d+$/,
    );
    expect(report.problems[1]).toMatch(/", block 9: page verification failed/);
  });

  it('ignores checksums when the cluster has none, but still checks the header', async () => {
    const insane = Buffer.from(page1);
    insane.writeUInt16LE(9000, 16);
    const { file, headers } = buildFile([records[0]!, { ...records[1]!, payload: insane }]);
    const { report } = await run(
      baseCheck({ headers, sizeBytes: file.length, segno: 0, checksumVersion: 0 }),
      file,
    );
    expect(report.problems).toEqual([
      'Corruption detected in file "/catalog/backups/demo/X/database/base/1/1234", block 9: page header invalid, pd_special 9000 is greater than block size 8192',
    ]);
  });

  it('warns, without failing, about a page newer than the stop LSN', async () => {
    const { file, headers } = buildFile(records);
    const { report } = await run(
      baseCheck({ headers, sizeBytes: file.length, segno: 1, stopLsn: parseLsn('0/3000000') }),
      file,
    );
    expect(report.problems).toEqual([]);
    expect(report.warnings).toEqual([
      'File: base/1/1234, block 3, checksum is correct. Page is from future: pageLSN 0/4000000 stopLSN 0/3000000',
      'File: base/1/1234, block 9, checksum is correct. Page is from future: pageLSN 0/4000000 stopLSN 0/3000000',
    ]);
  });

  it('reports a record header that disagrees with the map', async () => {
    const { file, headers } = buildFile(records);
    const recordPos = headers[1]!.pos;
    file.writeUInt32LE(10, recordPos);
    const { report } = await run(baseCheck({ headers, sizeBytes: file.length, segno: 1 }), file);
    expect(report.problems).toEqual([
      `Corruption detected in file "/catalog/backups/demo/X/database/base/1/1234", block 9: the record at offset ${recordPos} is for block 10 with 8192 bytes, page_header_map expects block 9 with 8192 bytes`,
    ]);
  });

  it('reports a map checksum that differs from the page', async () => {
    const { file, headers } = buildFile([records[0]!, { ...records[1]!, checksum: 1 }]);
    const { report } = await run(baseCheck({ headers, sizeBytes: file.length, segno: 1 }), file);
    expect(report.problems).toEqual([
      `Corruption detected in file "/catalog/backups/demo/X/database/base/1/1234", block 9: page_header_map holds checksum 1, the stored page has checksum ${page1.readUInt16LE(8)}`,
    ]);
  });

  it('reports a payload that does not decompress to a page', async () => {
    const { file, headers } = buildFile([
      { ...records[0]!, payload: deflateSync(Buffer.alloc(100), { level: 1 }) },
    ]);
    const { report } = await run(baseCheck({ headers, sizeBytes: file.length, segno: 1 }), file);
    expect(report.problems).toEqual([
      'Corruption detected in file "/catalog/backups/demo/X/database/base/1/1234", block 3: page decompressed to 100 bytes, expected 8192',
    ]);
  });
});

describe('checkDataFilePages without a map (pg_probackup before 2.4.0)', () => {
  it('reads padded compressed records, skips truncation markers and uses CRC-32 for 2.0.22–2.0.24', async () => {
    const lsn = parseLsn('0/1000000');
    const page = makePage(5, lsn, 7);
    const compressed = deflateSync(page, { level: 1 });
    const padded = Buffer.alloc(Math.ceil(compressed.length / 8) * 8, 0xee);
    compressed.copy(padded);
    const header = Buffer.alloc(8);
    header.writeUInt32LE(5, 0);
    header.writeInt32LE(compressed.length, 4);
    const truncated = Buffer.alloc(8);
    truncated.writeUInt32LE(6, 0);
    truncated.writeInt32LE(-2, 4);
    const file = Buffer.concat([header, padded, truncated]);
    const { crc, report } = await run(baseCheck({ programVersionNum: 20023 }), file, 'crc32');
    expect(report).toEqual({ problems: [], warnings: [] });
    expect(crc).toBe(crc32(file));
  });

  it('reports a file that ends inside a record', async () => {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(0, 0);
    header.writeInt32LE(BLCKSZ, 4);
    const file = Buffer.concat([header, Buffer.alloc(100)]);
    const { report } = await run(baseCheck({ programVersionNum: 20300 }), file);
    expect(report.problems).toEqual([
      'Cannot read block 0 file "/catalog/backups/demo/X/database/base/1/1234": the file ends inside the record',
    ]);
  });
});
