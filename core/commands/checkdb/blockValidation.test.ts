import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BLCKSZ } from '../../format/page.js';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { checkRelationFile } from './blockValidation.js';

/** Blocks 0-3 of pg_class of a PostgreSQL 17 `initdb -k` cluster: valid pages with checksums. */
const fixture = readFileSync(
  join(import.meta.dirname, '..', '..', 'format', 'fixtures', 'pg17-pg_class-heap-blocks0-3.bin'),
);

describe('checkRelationFile', () => {
  let dir: string;
  const storage = new LocalStorage();
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'strata-checkdb-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('passes valid pages and zero pages', async () => {
    const path = join(dir, '1259');
    writeFileSync(path, Buffer.concat([fixture, Buffer.alloc(BLCKSZ)]));
    const logger = createMemoryLogger();
    const result = await checkRelationFile(
      storage,
      { absolutePath: path, segno: 0, sizeBytes: 5 * BLCKSZ },
      true,
      logger,
    );
    expect(result).toEqual({ readable: true, blocksChecked: 5, corruptBlocks: [] });
    expect(logger.records.filter((record) => record.level === 'WARNING')).toEqual([]);
  });

  it('reports every corrupt block as a WARNING and goes on to the end of the file', async () => {
    const path = join(dir, '1259');
    const broken = Buffer.from(fixture);
    broken[1 * BLCKSZ + 6000]! ^= 0x01;
    broken.writeUInt16LE(9000, 3 * BLCKSZ + 12);
    writeFileSync(path, broken);
    const logger = createMemoryLogger();
    const result = await checkRelationFile(
      storage,
      { absolutePath: path, segno: 0, sizeBytes: 4 * BLCKSZ },
      true,
      logger,
    );
    expect(result.blocksChecked).toBe(4);
    expect(result.corruptBlocks.map((block) => block.blockNo)).toEqual([1, 3]);
    expect(result.corruptBlocks[0]!.detail).toMatch(
      /^page verification failed, calculated checksum \d+ but expected \d+$/,
    );
    const upper = fixture.readUInt16LE(3 * BLCKSZ + 14);
    expect(result.corruptBlocks[1]!.detail).toBe(
      `page header invalid, pd_lower 9000 is greater than pd_upper ${upper}`,
    );
    const warnings = logger.records
      .filter((record) => record.level === 'WARNING')
      .map((record) => record.message);
    expect(warnings).toEqual([
      `Corruption detected in file "${path}", block 1: ${result.corruptBlocks[0]!.detail}`,
      `Corruption detected in file "${path}", block 3: ${result.corruptBlocks[1]!.detail}`,
    ]);
  });

  it('checks checksums with the absolute block number, and only when the cluster has checksums', async () => {
    const path = join(dir, '1259.1');
    writeFileSync(path, fixture);
    const asSegment1 = await checkRelationFile(
      storage,
      { absolutePath: path, segno: 1, sizeBytes: fixture.length },
      true,
      createMemoryLogger(),
    );
    expect(asSegment1.corruptBlocks.map((block) => block.blockNo)).toEqual([0, 1, 2, 3]);
    const withoutChecksums = await checkRelationFile(
      storage,
      { absolutePath: path, segno: 1, sizeBytes: fixture.length },
      false,
      createMemoryLogger(),
    );
    expect(withoutChecksums.corruptBlocks).toEqual([]);
  });

  it('stops at the end of a file truncated since it was listed and ignores a dropped file', async () => {
    const path = join(dir, '1259');
    writeFileSync(path, fixture.subarray(0, 2 * BLCKSZ));
    const truncated = await checkRelationFile(
      storage,
      { absolutePath: path, segno: 0, sizeBytes: 4 * BLCKSZ },
      true,
      createMemoryLogger(),
    );
    expect(truncated).toEqual({ readable: true, blocksChecked: 2, corruptBlocks: [] });
    const dropped = await checkRelationFile(
      storage,
      { absolutePath: join(dir, 'gone'), segno: 0, sizeBytes: BLCKSZ },
      true,
      createMemoryLogger(),
    );
    expect(dropped).toEqual({ readable: true, blocksChecked: 0, corruptBlocks: [] });
  });
});
