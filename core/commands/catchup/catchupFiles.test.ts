import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseLsn, type Lsn } from '../../format/lsn.js';
import { BLCKSZ, RELSEG_SIZE, pgChecksumPage } from '../../format/page.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { catchupDataFile, type DataFileCatchupJob } from './catchupFiles.js';

const fixture = readFileSync(
  join(import.meta.dirname, '..', '..', 'format', 'fixtures', 'pg17-pg_class-heap-blocks0-3.bin'),
);

/** A real heap page of an `initdb -k` cluster given another pd_lsn, its checksum recomputed for `blockNo`. */
function pageWithLsn(blockNo: number, lsn: Lsn, absoluteBlockNo = blockNo): Buffer {
  const page = Buffer.from(fixture.subarray((blockNo % 4) * BLCKSZ, ((blockNo % 4) + 1) * BLCKSZ));
  page.writeUInt32LE(Number(lsn >> 32n), 0);
  page.writeUInt32LE(Number(lsn & 0xffffffffn), 4);
  page.writeUInt16LE(pgChecksumPage(page, absoluteBlockNo), 8);
  return page;
}

function blockOf(file: Buffer, blockNo: number): Buffer {
  return file.subarray(blockNo * BLCKSZ, (blockNo + 1) * BLCKSZ);
}

describe('catchupDataFile', () => {
  let dir: string;
  const storage = new LocalStorage();
  let job: (overrides: Partial<DataFileCatchupJob>) => DataFileCatchupJob;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'strata-catchup-file-'));
    job = (overrides) => ({
      sourcePath: join(dir, 'src'),
      destinationPath: join(dir, 'dst'),
      mode: 0o100600,
      segno: 0,
      sourceSizeBytes: statSync(join(dir, 'src')).size,
      checksumsEnabled: true,
      dryRun: false,
      ...overrides,
    });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('FULL copies every block byte for byte into a new plain file', async () => {
    writeFileSync(join(dir, 'src'), fixture);
    const result = await catchupDataFile(storage, job({}));
    expect(result).toEqual({
      missing: false,
      unchanged: false,
      copiedBlocks: 4,
      writtenBytes: 4 * BLCKSZ,
    });
    expect(readFileSync(join(dir, 'dst')).equals(fixture)).toBe(true);
    expect(statSync(join(dir, 'dst')).mode & 0o777).toBe(0o600);
  });

  it('DELTA writes pages at or after the sync LSN, zero pages and blocks the destination lacks; keeps the rest', async () => {
    const syncLsn = parseLsn('0/1800000');
    const source = [
      pageWithLsn(0, parseLsn('0/2000000')),
      pageWithLsn(1, parseLsn('0/1500000')),
      Buffer.alloc(BLCKSZ),
      pageWithLsn(3, parseLsn('0/17FFFFF')),
      pageWithLsn(4, parseLsn('0/100')),
    ];
    const destination = [0, 1, 2, 3].map((blockNo) => Buffer.alloc(BLCKSZ, 0x40 + blockNo));
    writeFileSync(join(dir, 'src'), Buffer.concat(source));
    writeFileSync(join(dir, 'dst'), Buffer.concat(destination));
    const result = await catchupDataFile(
      storage,
      job({ syncLsn, destinationSizeBytes: 4 * BLCKSZ }),
    );
    expect(result.copiedBlocks).toBe(3);
    expect(result.writtenBytes).toBe(3 * BLCKSZ);
    const copied = readFileSync(join(dir, 'dst'));
    expect(copied.length).toBe(5 * BLCKSZ);
    expect(blockOf(copied, 0).equals(source[0]!)).toBe(true);
    expect(blockOf(copied, 1).equals(destination[1]!)).toBe(true);
    expect(blockOf(copied, 2).equals(source[2]!)).toBe(true);
    expect(blockOf(copied, 3).equals(destination[3]!)).toBe(true);
    expect(blockOf(copied, 4).equals(source[4]!)).toBe(true);
  });

  it('DELTA cuts a destination file the source has truncated', async () => {
    writeFileSync(
      join(dir, 'src'),
      Buffer.concat([pageWithLsn(0, parseLsn('0/100')), pageWithLsn(1, parseLsn('0/100'))]),
    );
    writeFileSync(join(dir, 'dst'), Buffer.alloc(6 * BLCKSZ, 0x55));
    const result = await catchupDataFile(
      storage,
      job({ syncLsn: parseLsn('0/1000'), destinationSizeBytes: 6 * BLCKSZ }),
    );
    expect(result.copiedBlocks).toBe(0);
    const copied = readFileSync(join(dir, 'dst'));
    expect(copied.equals(Buffer.alloc(2 * BLCKSZ, 0x55))).toBe(true);
  });

  it('PTRACK reads only the changed blocks and the ones past the destination, and skips a file with none', async () => {
    const old = parseLsn('0/100');
    writeFileSync(
      join(dir, 'src'),
      Buffer.concat([0, 1, 2, 3].map((blockNo) => pageWithLsn(blockNo, parseLsn('0/9000000')))),
    );
    writeFileSync(join(dir, 'dst'), Buffer.alloc(3 * BLCKSZ, 0x11));
    const result = await catchupDataFile(
      storage,
      job({ syncLsn: old, destinationSizeBytes: 3 * BLCKSZ, blocks: Uint32Array.of(1) }),
    );
    expect(result.copiedBlocks).toBe(2);
    const copied = readFileSync(join(dir, 'dst'));
    expect(blockOf(copied, 0).equals(Buffer.alloc(BLCKSZ, 0x11))).toBe(true);
    expect(blockOf(copied, 1).readUInt32LE(4)).toBe(0x9000000);
    expect(blockOf(copied, 3).readUInt32LE(4)).toBe(0x9000000);

    const unchanged = await catchupDataFile(
      storage,
      job({ syncLsn: old, destinationSizeBytes: 4 * BLCKSZ, blocks: new Uint32Array(0) }),
    );
    expect(unchanged).toEqual({
      missing: false,
      unchanged: true,
      copiedBlocks: 0,
      writtenBytes: 0,
    });
  });

  it('uses the absolute block number of a later segment for checksums', async () => {
    writeFileSync(join(dir, 'src'), pageWithLsn(0, parseLsn('0/100'), RELSEG_SIZE));
    const result = await catchupDataFile(storage, job({ segno: 1 }));
    expect(result.copiedBlocks).toBe(1);
  });

  it('fails on a corrupt page naming file and block, and a dry run writes nothing', async () => {
    const broken = Buffer.from(fixture);
    broken[2 * BLCKSZ + 5000]! ^= 0xff;
    writeFileSync(join(dir, 'src'), broken);
    await expect(catchupDataFile(storage, job({}))).rejects.toThrow(
      new RegExp(
        `Corruption detected in file "${join(dir, 'src')}", block 2: page verification failed, calculated checksum \\d+ but expected \\d+`,
      ),
    );

    writeFileSync(join(dir, 'src'), fixture);
    rmSync(join(dir, 'dst'), { force: true });
    const dry = await catchupDataFile(storage, job({ dryRun: true }));
    expect(dry.writtenBytes).toBe(4 * BLCKSZ);
    expect(existsSync(join(dir, 'dst'))).toBe(false);
  });

  it('reports a source file dropped since it was listed as missing', async () => {
    writeFileSync(join(dir, 'src'), fixture);
    const listed = job({});
    rmSync(join(dir, 'src'));
    expect((await catchupDataFile(storage, listed)).missing).toBe(true);
  });
});
