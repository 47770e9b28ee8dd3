import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLCKSZ, pgChecksumPage } from '../core/format/page.js';
import { TestCluster, makeTempDir } from '../core/testing/cluster.js';
import { generateData } from '../core/testing/data.js';
import { runStrata, strata } from './strataCli.js';

function readBlock(path: string, blockNo: number): Buffer {
  const page = Buffer.alloc(BLCKSZ);
  const fd = openSync(path, 'r');
  try {
    expect(readSync(fd, page, 0, BLCKSZ, blockNo * BLCKSZ)).toBe(BLCKSZ);
  } finally {
    closeSync(fd);
  }
  return page;
}

function writeBlock(path: string, blockNo: number, page: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, page, 0, BLCKSZ, blockNo * BLCKSZ);
  } finally {
    closeSync(fd);
  }
}

/** BTPageOpaqueData sits in the special space: btpo_prev, btpo_next, btpo_level, btpo_flags. */
const BTP_LEAF = 1;

/**
 * A leaf page of a btree index file with at least 12 items, and the 1-based offset of its first
 * data item (a page with a right sibling starts with its high key).
 */
function findLeafPage(
  path: string,
  nBlocks: number,
): { blockNo: number; page: Buffer; firstDataItem: number } {
  for (let blockNo = 1; blockNo < nBlocks; blockNo++) {
    const page = readBlock(path, blockNo);
    const special = page.readUInt16LE(16);
    const flags = page.readUInt16LE(special + 12);
    const items = (page.readUInt16LE(12) - 24) / 4;
    if ((flags & BTP_LEAF) !== 0 && items >= 12) {
      const hasRightSibling = page.readUInt32LE(special + 4) !== 0;
      return { blockNo, page, firstDataItem: hasRightSibling ? 2 : 1 };
    }
  }
  throw new Error(`no leaf page with enough items in ${path}`);
}

describe('checkdb on PostgreSQL 17', () => {
  const major = 17;
  let cluster: TestCluster;
  let scratch: ReturnType<typeof makeTempDir>;
  /** The server's port changes with every start. */
  const connection = (): string[] => cluster.connectionArgs();

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-checkdb-');
    cluster = await TestCluster.create({ major });
    await cluster.start();
    await generateData(cluster, { databases: ['shop'], rowsPerTable: 3000 });
    for (const database of ['postgres', 'shop'])
      await cluster.query(database, 'CREATE EXTENSION amcheck');
  });

  afterAll(async () => {
    await cluster?.destroy();
    scratch?.remove();
  });

  it('passes a clean running cluster: every data page, and every btree index with heapallindexed and checkunique', async () => {
    const result = await strata([
      'checkdb',
      '-D',
      cluster.dataDir,
      '--amcheck',
      '--heapallindexed',
      '--checkunique',
      '-j',
      '3',
      '--progress',
      ...connection(),
    ]);
    const { stderr } = result;
    expect(stderr).toContain('INFO: Start checking data files');
    expect(stderr).toContain('INFO: Data files are valid');
    expect(stderr).toContain('INFO: Start amchecking PostgreSQL instance');
    expect(stderr).toMatch(
      /INFO: Amchecking database 'shop' using extension 'amcheck' version 1\.\d+ from schema 'public'/,
    );
    expect(stderr).toMatch(/Amchecking index 'public\.accounts_owner'/);
    expect(stderr).toMatch(/Amchecking index 'pg_catalog\.pg_database_oid_index'/);
    expect(stderr).not.toContain("do not support 'checkunique'");
    expect(stderr).toContain("INFO: Amcheck succeeded for database 'postgres'");
    expect(stderr).toContain("INFO: Amcheck succeeded for database 'shop'");
    expect(stderr).toContain(
      'INFO: checkdb --amcheck finished successfully. All checked indexes are valid.',
    );
    expect(stderr).toContain('INFO: All databases were amchecked.');
    expect(stderr).not.toContain('WARNING: Corruption');
    // Shared catalogs' indexes are checked once, in the first database only.
    expect(stderr.match(/Amchecking index 'pg_catalog\.pg_database_oid_index'/g)).toHaveLength(1);
  });

  it('takes PGDATA from the instance configuration with -B and --instance', async () => {
    const catalog = join(scratch.path, 'catalog');
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', 'db', '-D', cluster.dataDir]);
    const { stderr } = await strata([
      'checkdb',
      '-B',
      catalog,
      '--instance',
      'db',
      ...connection(),
    ]);
    expect(stderr).toContain('INFO: Data files are valid');
    const noInstance = await runStrata(['checkdb', '-B', catalog, ...connection()]);
    expect(noInstance.code).toBe(1);
    expect(noInstance.stderr).toContain('ERROR: Required parameter not specified: --instance');
  });

  it('refuses inconsistent options and reports databases without amcheck', async () => {
    const heap = await runStrata([
      'checkdb',
      '-D',
      cluster.dataDir,
      '--heapallindexed',
      ...connection(),
    ]);
    expect(heap.code).toBe(1);
    expect(heap.stderr).toContain('ERROR: --heapallindexed can only be used with --amcheck option');
    const unique = await runStrata([
      'checkdb',
      '-D',
      cluster.dataDir,
      '--checkunique',
      ...connection(),
    ]);
    expect(unique.stderr).toContain('ERROR: --checkunique can only be used with --amcheck option');
    const skip = await runStrata([
      'checkdb',
      '-D',
      cluster.dataDir,
      '--skip-block-validation',
      ...connection(),
    ]);
    expect(skip.code).toBe(1);
    expect(skip.stderr).toContain(
      "ERROR: Option '--skip-block-validation' must be used with '--amcheck' option",
    );
    const noPgdata = await runStrata(['checkdb', ...connection()], { env: { PGDATA: '' } });
    expect(noPgdata.code).toBe(1);
    expect(noPgdata.stderr).toContain(
      'ERROR: Required parameter not specified: PGDATA (-D, --pgdata)',
    );

    await cluster.query('postgres', 'CREATE DATABASE noext');
    try {
      const skipped = await runStrata([
        'checkdb',
        '--amcheck',
        '--skip-block-validation',
        ...connection(),
      ]);
      expect(skipped.code).toBe(1);
      expect(skipped.stderr).not.toContain('Start checking data files');
      expect(skipped.stderr).toContain(
        "WARNING: Extension 'amcheck' or 'amcheck_next' are not installed in database noext",
      );
      expect(skipped.stderr).toContain(
        'INFO: checkdb --amcheck finished successfully. All checked indexes are valid.',
      );
      expect(skipped.stderr).toContain('ERROR: Some databases were not amchecked.');
    } finally {
      await cluster.query('postgres', 'DROP DATABASE noext');
    }
  });

  it('finds a page corrupted on disk in a stopped cluster, naming file and block, and goes on checking', async () => {
    const relationPath = (
      await cluster.query<{ path: string }>(
        'shop',
        "SELECT pg_relation_filepath('accounts') AS path",
      )
    )[0]!.path;
    const indexPath = (
      await cluster.query<{ path: string }>(
        'shop',
        "SELECT pg_relation_filepath('accounts_owner') AS path",
      )
    )[0]!.path;
    await cluster.stop();
    const heapFile = join(cluster.dataDir, relationPath);
    const indexFile = join(cluster.dataDir, indexPath);
    const original = { heap: readBlock(heapFile, 2), index: readBlock(indexFile, 1) };
    const brokenHeap = Buffer.from(original.heap);
    brokenHeap[6000]! ^= 0xff;
    writeBlock(heapFile, 2, brokenHeap);
    const brokenIndex = Buffer.from(original.index);
    brokenIndex.writeUInt16LE(16, 12);
    writeBlock(indexFile, 1, brokenIndex);
    try {
      const result = await runStrata(['checkdb', '-D', cluster.dataDir, '-j', '2']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`INFO: PostgreSQL is not running on "${cluster.dataDir}"`);
      // pg_probackup's wording: the page's pd_checksum is "calculated", the computed one "expected".
      const stored = brokenHeap.readUInt16LE(8);
      const computed = pgChecksumPage(brokenHeap, 2);
      expect(computed).not.toBe(stored);
      expect(result.stderr).toContain(
        `WARNING: Corruption detected in file "${heapFile}", block 2: page verification failed, calculated checksum ${stored} but expected ${computed}`,
      );
      expect(result.stderr).toContain(
        `WARNING: Corruption detected in file "${indexFile}", block 1: page header invalid, pd_lower 16 is less than page header size 24`,
      );
      expect(result.stderr.match(/WARNING: Corruption detected/g)).toHaveLength(2);
      expect(result.stderr).toContain('ERROR: Checkdb failed');
      expect(result.stderr).not.toContain('Data files are valid');
    } finally {
      writeBlock(heapFile, 2, original.heap);
      writeBlock(indexFile, 1, original.index);
    }
    const repaired = await strata(['checkdb', '-D', cluster.dataDir]);
    expect(repaired.stderr).toContain('INFO: Data files are valid');
    await cluster.start();
  });

  it('finds a btree index with items out of order whose pages still pass block validation', async () => {
    await cluster.query('postgres', 'CREATE TABLE ordered (id int PRIMARY KEY, filler text)');
    await cluster.query(
      'postgres',
      "INSERT INTO ordered SELECT g, 'row ' || g FROM generate_series(1, 2000) g",
    );
    const [index] = await cluster.query<{ path: string; blocks: number }>(
      'postgres',
      "SELECT pg_relation_filepath('ordered_pkey') AS path, pg_relation_size('ordered_pkey')::int / 8192 AS blocks",
    );
    await cluster.stop();
    const indexFile = join(cluster.dataDir, index!.path);
    const leaf = findLeafPage(indexFile, index!.blocks);
    // Swap two line pointers of data items: the page stays well formed, its keys fall out of order.
    const first = 24 + (leaf.firstDataItem - 1 + 4) * 4;
    const page = Buffer.from(leaf.page);
    const a = page.readUInt32LE(first);
    page.writeUInt32LE(page.readUInt32LE(first + 4), first);
    page.writeUInt32LE(a, first + 4);
    page.writeUInt16LE(pgChecksumPage(page, leaf.blockNo), 8);
    writeBlock(indexFile, leaf.blockNo, page);
    await cluster.start();
    try {
      const result = await runStrata([
        'checkdb',
        '-D',
        cluster.dataDir,
        '--amcheck',
        '-j',
        '2',
        ...connection(),
      ]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('INFO: Data files are valid');
      expect(result.stderr).toMatch(
        /WARNING: Thread \[\d\]\. Amcheck failed in database 'postgres' for index: 'public\.ordered_pkey': ERROR: {2}item order invariant violated for index "ordered_pkey"/,
      );
      expect(result.stderr).toContain("WARNING: Amcheck failed for database 'postgres'");
      expect(result.stderr).toContain("INFO: Amcheck succeeded for database 'shop'");
      expect(result.stderr).toContain(
        'ERROR: checkdb --amcheck finished with failure. Not all checked indexes are valid. All databases were amchecked.',
      );
    } finally {
      await cluster.query('postgres', 'DROP TABLE ordered');
    }
  });
});

describe('checkdb on PostgreSQL 13', () => {
  let cluster: TestCluster;
  let other: TestCluster;

  beforeAll(async () => {
    cluster = await TestCluster.create({ major: 13 });
    await cluster.start();
    await cluster.query('postgres', 'CREATE EXTENSION amcheck');
    other = await TestCluster.create({ major: 17 });
  });

  afterAll(async () => {
    await cluster?.destroy();
    await other?.destroy();
  });

  it('warns that amcheck 1.2 has no checkunique and checks without it', async () => {
    const connection = cluster.connectionArgs();
    const { stderr } = await strata([
      'checkdb',
      '-D',
      cluster.dataDir,
      '--amcheck',
      '--heapallindexed',
      '--checkunique',
      ...connection,
    ]);
    expect(stderr).toContain(
      "WARNING: Extension 'amcheck' version 1.2 in schema 'public' do not support 'checkunique' parameter",
    );
    expect(stderr).toContain('INFO: All databases were amchecked.');
  });

  it("refuses a PGDATA of another system than the server's", async () => {
    await other.start();
    const connection = cluster.connectionArgs();
    const result = await runStrata(['checkdb', '-D', other.dataDir, ...connection]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /ERROR: Data directory initialized with system id \d+, but connected instance system id is \d+/,
    );
  });
});
