import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { threadId as mainThreadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupCatalog } from '../../catalog/catalog.js';
import { decodePageHeaderSlice, readPageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import type { CompressAlgorithm, FileEntry } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import { BLCKSZ, pgChecksumPage } from '../../format/page.js';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { SplitStorage } from '../../storage/ssh/splitStorage.js';
import type { Storage } from '../../storage/storage.js';
import { probackupFixtureDir, repoRoot } from '../../testing/pgBinaries.js';
import {
  copyDataFileByRanges,
  copyDataFilePages,
  copyPageRange,
  type DataFileCopyJob,
  type DataFileCopyOutput,
} from '../backup/dataFileCopy.js';
import { PageHeaderMapWriter } from '../backup/pageHeaderMapWriter.js';
import type { CommandContext } from '../context.js';
import { fileKey } from '../restore/incremental.js';
import {
  restoreChainFiles,
  type ChainMember,
  type DestinationState,
  type RestoreChainResult,
} from '../restore/restoreFiles.js';
import { validateBackupFiles } from '../validate/backupFiles.js';
import { programVersionNumber } from '../validate/programVersion.js';
import { createFileCopyPool } from './fileCopyPool.js';
import { FileWorkerPool, bundledWorkerUrl } from './workerPool.js';

const storage = new LocalStorage();
const fixtures = join(repoRoot, 'core', 'format', 'fixtures');
const algorithms: CompressAlgorithm[] = ['none', 'zlib', 'pglz', 'lz4', 'zstd'];
let dir: string;
let workerUrl: URL;
/** A worker entry that does not exist: a job sent to a worker fails, one kept on this thread runs. */
let missingWorkerUrl: URL;
/** Relation files (segment 0) built from real pages: name → block count. */
const relations = new Map<string, number>();

/**
 * A relation file of `blocks` real pages (heap and btree pages of initdb clusters, cycled), each
 * with pd_checksum set for its new block number so that every page passes the backup's checks.
 */
function writeRelation(name: string, blocks: number): void {
  const sources = [
    readFileSync(join(fixtures, 'pg17-pg_class-heap-blocks0-3.bin')),
    readFileSync(join(fixtures, 'pg17-pg_class_oid_index-btree-blocks0-3.bin')),
  ];
  const pages = sources.flatMap((file) =>
    Array.from({ length: file.length / BLCKSZ }, (_, i) =>
      file.subarray(i * BLCKSZ, (i + 1) * BLCKSZ),
    ),
  );
  const relation = Buffer.alloc(blocks * BLCKSZ);
  for (let blockNo = 0; blockNo < blocks; blockNo++) {
    // Every seventh block stays all-zero, as extended-but-unused relation blocks are.
    if (blockNo % 7 === 6) continue;
    const page = relation.subarray(blockNo * BLCKSZ, (blockNo + 1) * BLCKSZ);
    page.set(pages[blockNo % pages.length]!);
    page.writeUInt16LE(pgChecksumPage(page, blockNo), 8);
  }
  writeFileSync(join(dir, 'pgdata', name), relation);
  relations.set(name, blocks);
}

function copyJob(name: string, algorithm: CompressAlgorithm, outDir: string): DataFileCopyJob {
  return {
    sourcePath: join(dir, 'pgdata', name),
    displayPath: name,
    destinationPath: join(dir, outDir, `${name}.${algorithm}`),
    segno: 0,
    checksumsEnabled: true,
    skipBlockValidation: false,
    compressAlgorithm: algorithm,
    compressLevel: 1,
    sync: false,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-workers-'));
  for (const sub of ['pgdata', 'inthread', 'worker', 'restored', 'worker-bundle']) {
    mkdirSync(join(dir, sub));
  }
  // The worker bundle as scripts/build.mjs makes it; node_modules beside it for lz4-napi, which
  // stays outside the bundle.
  await build({
    entryPoints: [join(repoRoot, 'core', 'commands', 'workers', 'fileWorker.ts')],
    outfile: join(dir, 'worker-bundle', 'fileWorker.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    external: ['pg-native', 'lz4-napi'],
    banner: {
      js: "import { createRequire as strataCreateRequire } from 'node:module'; const require = strataCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'worker-bundle', 'node_modules'));
  workerUrl = pathToFileURL(join(dir, 'worker-bundle', 'fileWorker.mjs'));
  missingWorkerUrl = pathToFileURL(join(dir, 'worker-bundle', 'missing.mjs'));
  writeRelation('16384', 300);
  writeRelation('16385', 129);
  writeRelation('16386', 64);
  writeRelation('16387', 1);
  // Larger than one range of the copy pool (1024 blocks): split across the workers.
  writeRelation('16400', 2500);
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('FileWorkerPool', () => {
  it('runs jobs on the calling thread when there is no worker bundle (unbundled code)', async () => {
    expect(bundledWorkerUrl()).toBeUndefined();
    const pool = new FileWorkerPool(2);
    expect(pool.usesWorkerThreads).toBe(false);
    const outcome = await pool.run(storage, 'copyDataFile', copyJob('16387', 'zlib', 'inthread'));
    expect(outcome.threadId).toBe(mainThreadId);
    expect(outcome.output.nBlocks).toBe(1);
    await pool.close();
  });

  it('runs copies on two worker threads, byte for byte as on the calling thread', async () => {
    const inThread = new FileWorkerPool(2, { workerUrl: undefined });
    const workers = new FileWorkerPool(2, { workerUrl });
    expect(workers.usesWorkerThreads).toBe(true);
    try {
      const threadIds = new Set<number>();
      for (const algorithm of algorithms) {
        const names = [...relations.keys()].filter((name) => name !== '16400');
        const local = await Promise.all(
          names.map((name) =>
            inThread.run(storage, 'copyDataFile', copyJob(name, algorithm, 'inthread')),
          ),
        );
        const remote = await Promise.all(
          names.map((name) =>
            workers.run(storage, 'copyDataFile', copyJob(name, algorithm, 'worker')),
          ),
        );
        for (const [index, name] of names.entries()) {
          const expected: DataFileCopyOutput = local[index]!.output;
          const actual = remote[index]!;
          threadIds.add(actual.threadId);
          expect(actual.output.crc, `${name} ${algorithm}`).toBe(expected.crc);
          expect(actual.output.nBlocks).toBe(relations.get(name));
          expect(actual.output.storedPages).toBe(relations.get(name));
          expect(actual.output.writeSizeBytes).toBe(expected.writeSizeBytes);
          expect(Buffer.from(actual.output.headerSlice!.bytes)).toEqual(
            Buffer.from(expected.headerSlice!.bytes),
          );
          const copied = readFileSync(join(dir, 'worker', `${name}.${algorithm}`));
          expect(copied.equals(readFileSync(join(dir, 'inthread', `${name}.${algorithm}`)))).toBe(
            true,
          );
          if (algorithm === 'none') expect(copied.length).toBe(relations.get(name)! * (BLCKSZ + 8));
          else expect(copied.length).toBeLessThan(relations.get(name)! * BLCKSZ);
        }
      }
      // Four files submitted at once start both workers: two threads, neither the main one.
      expect(threadIds.size).toBe(2);
      expect(threadIds.has(mainThreadId)).toBe(false);
    } finally {
      await inThread.close();
      await workers.close();
    }
  });

  it('keeps a job smaller than minWorkerJobBytes on the calling thread', async () => {
    const workers = new FileWorkerPool(2, { workerUrl, minWorkerJobBytes: 64 * BLCKSZ });
    try {
      const job = (name: string) => copyJob(name, 'none', 'worker');
      const small = await workers.run(storage, 'copyDataFile', job('16386'), {
        sizeBytes: 64 * BLCKSZ - 1,
      });
      const large = await workers.run(storage, 'copyDataFile', job('16384'), {
        sizeBytes: 300 * BLCKSZ,
      });
      const unsized = await workers.run(storage, 'copyDataFile', job('16385'));
      expect(small.threadId).toBe(mainThreadId);
      expect(large.threadId).not.toBe(mainThreadId);
      expect(unsized.threadId).not.toBe(mainThreadId);
      expect([small, large, unsized].map((outcome) => outcome.output.nBlocks)).toEqual([
        64, 300, 129,
      ]);
    } finally {
      await workers.close();
    }
  });

  it('hands errors back as the calling thread would see them', async () => {
    const workers = new FileWorkerPool(1, { workerUrl });
    try {
      const missing = workers.run(storage, 'copyDataFile', copyJob('99999', 'none', 'worker'));
      await expect(missing).rejects.toMatchObject({ code: 'ENOENT' });
      const broken = Buffer.from(readFileSync(join(dir, 'pgdata', '16387')));
      broken.writeUInt16LE(broken.readUInt16LE(8) ^ 0x5555, 8);
      writeFileSync(join(dir, 'pgdata', 'broken'), broken);
      const corrupt = await workers
        .run(storage, 'copyDataFile', copyJob('broken', 'zlib', 'worker'))
        .catch((error: unknown) => error);
      expect(corrupt).toBeInstanceOf(StrataError);
      expect((corrupt as StrataError).code).toBe('corrupt');
      expect((corrupt as StrataError).message).toMatch(
        /^Corruption detected in file "broken", block 0: page verification failed, calculated checksum \d+ but expected \d+$/,
      );
      // The worker survives a failed job.
      const after = await workers.run(storage, 'copyDataFile', copyJob('16387', 'none', 'worker'));
      expect(after.output.storedPages).toBe(1);
    } finally {
      await workers.close();
    }
  }, 60_000);

  it('copies only the listed blocks, and only pages at or after an LSN', async () => {
    const workers = new FileWorkerPool(2, { workerUrl });
    try {
      const blocks = Uint32Array.from([0, 1, 2, 64, 65, 127, 128, 299, 300, 5000]);
      const { output } = await workers.run(storage, 'copyDataFile', {
        ...copyJob('16384', 'zstd', 'worker'),
        destinationPath: join(dir, 'worker', 'blocks'),
        blocks,
      });
      // Blocks 300 and 5000 are past the 300-block file: ignored.
      expect(output.nBlocks).toBe(300);
      expect(output.storedPages).toBe(8);
      const headers = decodePageHeaderSlice(
        output.headerSlice!.bytes,
        8,
        output.headerSlice!.hdrCrc,
        'x',
      );
      expect(headers.map((entry) => entry.block)).toEqual([0, 1, 2, 64, 65, 127, 128, 299, 0]);
      const { output: none } = await workers.run(storage, 'copyDataFile', {
        ...copyJob('16384', 'none', 'worker'),
        destinationPath: join(dir, 'worker', 'future'),
        keepPagesFromLsn: 0xffffffffffffn,
      });
      // No page is that new: only the all-zero pages (every seventh) are kept.
      expect(none.storedPages).toBe(Math.floor(300 / 7));
    } finally {
      await workers.close();
    }
  });
});

describe('createFileCopyPool', () => {
  it('copies through workers with the shapes of copyDataFile and copyWholeFile', async () => {
    const pool = createFileCopyPool(2, { workerUrl });
    const mapPath = join(dir, 'worker', 'page_header_map');
    const headerMap = new PageHeaderMapWriter(storage, mapPath);
    try {
      expect(pool.usesWorkerThreads).toBe(true);
      const results = await Promise.all(
        ['16385', '16386'].map((name) =>
          pool.copyDataFile({ storage, headerMap, ...copyJob(name, 'lz4', 'worker') }),
        ),
      );
      await headerMap.close(false);
      const map = readFileSync(mapPath);
      for (const result of results) {
        const slice = map.subarray(
          Number(result.header!.hdrOff),
          Number(result.header!.hdrOff) + result.header!.hdrSize,
        );
        const headers = decodePageHeaderSlice(
          slice,
          result.storedPages,
          result.header!.hdrCrc,
          'map',
        );
        expect(headers.at(-1)!.pos).toBe(result.writeSizeBytes);
      }
      expect(results[0]!.header!.hdrSize + results[1]!.header!.hdrSize).toBe(map.length);
      const whole = await pool.copyWholeFile(
        storage,
        join(dir, 'pgdata', '16387'),
        join(dir, 'worker', 'whole'),
        0o100640,
        false,
      );
      expect(whole.sizeBytes).toBe(BLCKSZ);
      expect(
        readFileSync(join(dir, 'worker', 'whole')).equals(
          readFileSync(join(dir, 'pgdata', '16387')),
        ),
      ).toBe(true);
    } finally {
      await pool.close();
    }
  });
});

describe('restore and validate jobs', () => {
  it('restores and checks backed-up files on worker threads for every algorithm', async () => {
    const workers = new FileWorkerPool(2, { workerUrl });
    try {
      for (const algorithm of algorithms) {
        const job = copyJob('16384', algorithm, 'worker');
        const { output } = await workers.run(storage, 'copyDataFile', job);
        const mapPath = join(dir, 'worker', `map.${algorithm}`);
        writeFileSync(mapPath, output.headerSlice!.bytes);
        const entry: FileEntry = {
          path: 'base/1/16384',
          size: output.writeSizeBytes,
          mode: 0o100600,
          isDatafile: true,
          isCfs: false,
          crc: output.crc,
          compressAlg: algorithm,
          externalDirNum: 0,
          dbOid: 1,
          fullSize: undefined,
          segno: 0,
          linked: undefined,
          nBlocks: output.nBlocks,
          nHeaders: output.storedPages,
          hdrCrc: output.headerSlice!.hdrCrc,
          hdrOff: 0n,
          hdrSize: output.headerSlice!.bytes.length,
        };
        const destinationPath = join(dir, 'restored', `16384.${algorithm}`);
        const restored = await workers.run(storage, 'restoreDataFile', {
          destinationPath,
          displayPath: entry.path,
          mode: 0o600,
          nBlocks: entry.nBlocks,
          sources: [
            {
              backupId: 'T1',
              path: job.destinationPath,
              compressAlg: algorithm,
              programVersionNum: 20500,
              headerMap: { mapPath, entry },
            },
          ],
          newestFirst: false,
        });
        expect(restored.threadId).not.toBe(mainThreadId);
        expect(restored.output.writtenBytes).toBe(300 * BLCKSZ);
        expect(readFileSync(destinationPath).equals(readFileSync(job.sourcePath)), algorithm).toBe(
          true,
        );

        // The whole check of the stored file: size, every page through the map, the file's CRC.
        const checked = await workers.run(storage, 'checkBackupFile', {
          entry,
          fullPath: job.destinationPath,
          headerMapPath: mapPath,
          backupMode: 'FULL',
          checksumVersion: 1,
          stopLsn: 0n,
          programVersionNum: 20500,
          crcKind: 'crc32c',
          skipBlockValidation: false,
        });
        expect(checked.threadId).not.toBe(mainThreadId);
        expect(checked.output).toEqual({ problems: [], warnings: [] });
      }
    } finally {
      await workers.close();
    }
  }, 60_000);
});

describe('copyDataFileByRanges', () => {
  function expectSameCopy(actual: DataFileCopyOutput, expected: DataFileCopyOutput): void {
    expect(actual.crc).toBe(expected.crc);
    expect(actual.nBlocks).toBe(expected.nBlocks);
    expect(actual.storedPages).toBe(expected.storedPages);
    expect(actual.writeSizeBytes).toBe(expected.writeSizeBytes);
    expect(Buffer.from(actual.headerSlice!.bytes)).toEqual(
      Buffer.from(expected.headerSlice!.bytes),
    );
  }

  it.each([
    ['whole file', {}],
    ['listed blocks', { blocks: Uint32Array.from([0, 5, 9, 10, 11, 63, 64, 200, 299, 300, 301]) }],
    ['pages after an LSN', { keepPagesFromLsn: 0xffffffffffffn }],
  ])('writes what copyDataFilePages writes, %s', async (_what, extra) => {
    for (const algorithm of ['none', 'zstd'] as const) {
      const job = { ...copyJob('16384', algorithm, 'inthread'), ...extra };
      const expected = await copyDataFilePages(storage, job);
      const expectedBytes = readFileSync(job.destinationPath);
      const ranged = await copyDataFileByRanges(
        storage,
        { ...job, destinationPath: `${job.destinationPath}.ranged` },
        {
          rangeBlocks: 10,
          rangesInFlight: 3,
          runRange: (range) => copyPageRange(storage, range),
        },
      );
      expectSameCopy(ranged, expected);
      expect(readFileSync(`${job.destinationPath}.ranged`).equals(expectedBytes)).toBe(true);
      // A producer that sends no CRC (an older remote agent): the writer computes it.
      const withoutCrc = await copyDataFileByRanges(
        storage,
        { ...job, destinationPath: `${job.destinationPath}.nocrc` },
        {
          rangeBlocks: 64,
          rangesInFlight: 2,
          runRange: async (range) => ({ ...(await copyPageRange(storage, range)), crc: undefined }),
        },
      );
      expectSameCopy(withoutCrc, expected);
    }
  });

  it('stops at a file truncated while its ranges are read, like a single pass', async () => {
    writeRelation('16500', 30);
    const job = copyJob('16500', 'zlib', 'inthread');
    const ranged = await copyDataFileByRanges(
      storage,
      { ...job, destinationPath: `${job.destinationPath}.ranged` },
      {
        rangeBlocks: 10,
        rangesInFlight: 1,
        runRange: (range) => {
          if (range.firstBlock === 10) truncateSync(job.sourcePath, 15 * BLCKSZ);
          return copyPageRange(storage, range);
        },
      },
    );
    expect(ranged.nBlocks).toBe(15);
    const expected = await copyDataFilePages(storage, job);
    expectSameCopy(ranged, expected);
    expect(
      readFileSync(`${job.destinationPath}.ranged`).equals(readFileSync(job.destinationPath)),
    ).toBe(true);
  });

  it('splits a large file across the pool workers, byte for byte as one pass', async () => {
    const pool = createFileCopyPool(2, { workerUrl });
    const mapPath = join(dir, 'worker', 'large_page_header_map');
    const headerMap = new PageHeaderMapWriter(storage, mapPath);
    try {
      for (const algorithm of ['none', 'lz4'] as const) {
        const job = copyJob('16400', algorithm, 'worker');
        const copied = await pool.copyDataFile({ storage, headerMap, ...job });
        const expected = await copyDataFilePages(storage, {
          ...job,
          destinationPath: join(dir, 'inthread', `16400.${algorithm}`),
        });
        expect(copied.nBlocks).toBe(2500);
        expect(copied.crc).toBe(expected.crc);
        expect(copied.writeSizeBytes).toBe(expected.writeSizeBytes);
        expect(copied.header!.hdrCrc).toBe(expected.headerSlice!.hdrCrc);
        expect(
          readFileSync(job.destinationPath).equals(
            readFileSync(join(dir, 'inthread', `16400.${algorithm}`)),
          ),
        ).toBe(true);
      }
    } finally {
      await headerMap.close(false);
      await pool.close();
    }
  }, 60_000);
});

/** This host's files reached as if they were on another host: no job on them goes to a worker. */
function elsewhereStorage(): Storage {
  return new Proxy(new LocalStorage(), {
    get: (target, key, receiver) =>
      key === 'localPath' ? () => undefined : Reflect.get(target, key, receiver),
  });
}

/** Every regular file and symlink under `root`, by relative path: its bytes, or the link target. */
function tree(root: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile()) files.set(relative(root, path), readFileSync(path));
    else if (entry.isSymbolicLink()) files.set(relative(root, path), Buffer.from(`-> ${path}`));
  }
  return files;
}

function expectSameTree(actual: string, expected: string): void {
  const actualFiles = tree(actual);
  const expectedFiles = tree(expected);
  expect([...actualFiles.keys()].sort()).toEqual([...expectedFiles.keys()].sort());
  for (const [path, bytes] of expectedFiles) {
    expect(actualFiles.get(path)!.equals(bytes), path).toBe(true);
  }
}

describe('restore and validate of the pg_probackup 2.5.16 fixture on the pool', () => {
  const fixtureCatalog = join(probackupFixtureDir, 'catalog');
  /** FULL (zlib) ← DELTA (pglz) ← PAGE (none), newest first as RestoreChainOptions wants them. */
  const chainIds = ['TP11RT', 'TP11RH', 'TP11R6'];

  async function chainOf(
    catalog: BackupCatalog,
    id: string,
  ): Promise<{ chain: ChainMember[]; destEntries: FileEntry[] }> {
    const chain: ChainMember[] = [];
    for (const memberId of chainIds.slice(chainIds.indexOf(id))) {
      const backup = (await catalog.readBackup('demo', memberId))!;
      const entries = await catalog.readContentList(backup);
      chain.push({
        backup,
        files: new Map(entries.map((entry) => [fileKey(entry.externalDirNum, entry.path), entry])),
        programVersionNum: programVersionNumber(backup.programVersion),
      });
    }
    const destEntries = await catalog.readContentList(chain[0]!.backup);
    return { chain, destEntries };
  }

  async function restore(
    id: string,
    pgdata: string,
    threads: number,
    options: { workerUrl?: URL; storage?: Storage; destination?: DestinationState } = {},
  ): Promise<RestoreChainResult> {
    const { chain, destEntries } = await chainOf(new BackupCatalog(storage, fixtureCatalog), id);
    mkdirSync(pgdata, { recursive: true, mode: 0o700 });
    return restoreChainFiles({
      storage: options.storage ?? storage,
      logger: createMemoryLogger(),
      signal: undefined,
      chain,
      destEntries,
      pgdata,
      tablespaces: [],
      threads,
      progress: false,
      destination: options.destination,
      // Every data file on a worker, also the small ones that would stay on this thread.
      workerPool: { workerUrl: options.workerUrl, minWorkerJobBytes: 0 },
    });
  }

  it.each([
    ['TP11R6', 'a FULL, FULL copy first'],
    ['TP11RT', 'a chain of three, newest first'],
  ])(
    'restores %s (%s) with -j 2 on worker threads byte for byte as -j 1',
    async (id) => {
      const inThread = await restore(id, join(dir, `pgdata-${id}-j1`), 1, { workerUrl });
      const workers = await restore(id, join(dir, `pgdata-${id}-j2`), 2, { workerUrl });
      expect(inThread.failure).toBeUndefined();
      expect(workers.failure).toBeUndefined();
      expect(workers.transferredBytes).toBe(inThread.transferredBytes);
      expect(workers.pagesWritten).toBe(inThread.pagesWritten);
      expect(inThread.pagesWritten).toBeGreaterThan(100);
      expectSameTree(join(dir, `pgdata-${id}-j2`), join(dir, `pgdata-${id}-j1`));

      // The data files of -j 2 really go to a worker: without a worker entry they fail, the
      // first failure named as the worker's, and pg_control is not written.
      const broken = await restore(id, join(dir, `pgdata-${id}-broken`), 2, {
        workerUrl: missingWorkerUrl,
      });
      expect(broken.failure?.code).toBe('internal');
      expect(broken.failure?.message).toMatch(
        /^A file worker thread failed while running restoreDataFile: /,
      );
      expect(broken.restoredFiles).toEqual([]);
    },
    60_000,
  );

  it('incremental restore (-I checksum) over a restored FULL: -j 2 on workers keeps and writes the pages -j 1 does', async () => {
    const results: RestoreChainResult[] = [];
    for (const [threads, name] of [
      [1, 'incremental-j1'],
      [2, 'incremental-j2'],
    ] as const) {
      const pgdata = join(dir, name);
      expect((await restore('TP11R6', pgdata, 1)).failure).toBeUndefined();
      const result = await restore('TP11RT', pgdata, threads, {
        workerUrl,
        destination: { kind: 'incremental', mode: 'checksum', shiftLsn: 0n },
      });
      expect(result.failure).toBeUndefined();
      results.push(result);
    }
    const [inThread, workers] = results as [RestoreChainResult, RestoreChainResult];
    expect(inThread.pagesKept).toBeGreaterThan(0);
    expect(inThread.pagesWritten).toBeGreaterThan(0);
    expect(workers.pagesKept).toBe(inThread.pagesKept);
    expect(workers.pagesWritten).toBe(inThread.pagesWritten);
    expect(workers.transferredBytes).toBe(inThread.transferredBytes);
    expectSameTree(join(dir, 'incremental-j2'), join(dir, 'incremental-j1'));
    expectSameTree(join(dir, 'incremental-j2'), join(dir, 'pgdata-TP11RT-j1'));
  }, 60_000);

  it('rebuilds the data files of a PGDATA on another host on the calling thread', async () => {
    const pgdata = join(dir, 'pgdata-elsewhere');
    // The catalog on this host, PGDATA reached "remotely" (as after --remote-host): no worker
    // may open its files, so even without a worker entry the restore succeeds.
    const split = new SplitStorage({
      roots: [pgdata],
      inside: elsewhereStorage(),
      outside: storage,
    });
    const result = await restore('TP11RT', pgdata, 2, {
      workerUrl: missingWorkerUrl,
      storage: split,
    });
    expect(result.failure).toBeUndefined();
    expectSameTree(pgdata, join(dir, 'pgdata-TP11RT-j1'));
  }, 60_000);

  describe('validateBackupFiles', () => {
    let catalog: BackupCatalog;

    beforeAll(() => {
      const copy = join(dir, 'catalog');
      cpSync(fixtureCatalog, copy, { recursive: true });
      // The fixture is read-only; its copy gets damaged on purpose.
      execFileSync('chmod', ['-R', 'u+w', copy]);
      catalog = new BackupCatalog(storage, copy);
    });

    async function validate(
      id: string,
      threads: number,
      url: URL,
      contextStorage: Storage = storage,
    ): Promise<{ problems: string[]; warnings: string[] }> {
      const logger = createMemoryLogger();
      const ctx: CommandContext = { storage: contextStorage, logger, now: () => Date.now() };
      const result = await validateBackupFiles(ctx, {
        catalog,
        instance: 'demo',
        backup: (await catalog.readBackup('demo', id))!,
        threads,
        skipBlockValidation: false,
        workerPool: { workerUrl: url, minWorkerJobBytes: 0 },
      });
      const warnings = logger.records
        .filter((record) => record.level === 'WARNING')
        .map((record) => record.message);
      expect(result.ok).toBe(result.problems.length === 0);
      return { problems: result.problems, warnings };
    }

    /** Flips a byte inside the stored payload of the second page of the first data file with two. */
    async function damageSecondPage(
      id: string,
      offsetInPayload: (payloadBytes: number) => number,
    ): Promise<{ path: string; block: number }> {
      const backup = (await catalog.readBackup('demo', id))!;
      for (const entry of await catalog.readContentList(backup)) {
        if (!entry.isDatafile || (entry.nHeaders ?? 0) < 2) continue;
        const headers = await readPageHeaderSlice(
          storage,
          join(backup.dir, 'page_header_map'),
          entry,
        );
        const payloadBytes = headers[2]!.pos - headers[1]!.pos - 8;
        const path = join(backup.dir, 'database', entry.path);
        const bytes = readFileSync(path);
        const offset = headers[1]!.pos + 8 + offsetInPayload(payloadBytes);
        bytes[offset] = bytes[offset]! ^ 0xff;
        writeFileSync(path, bytes);
        return { path, block: headers[1]!.block };
      }
      throw new Error(`backup ${id} has no data file with two pages`);
    }

    it('finds the fixture valid with -j 2 on workers, also when PGDATA is on another host', async () => {
      for (const id of chainIds) {
        expect(await validate(id, 2, workerUrl)).toEqual({ problems: [], warnings: [] });
      }
      // After a remote backup ctx.storage is a SplitStorage: its catalog files are on this host,
      // so the checks go to the workers (without a worker entry they fail).
      const split = new SplitStorage({
        roots: [join(dir, 'remote-pgdata')],
        inside: elsewhereStorage(),
        outside: storage,
      });
      expect(await validate('TP11RT', 2, workerUrl, split)).toEqual({
        problems: [],
        warnings: [],
      });
      await expect(validate('TP11RT', 2, missingWorkerUrl, split)).rejects.toThrow(
        /^A file worker thread failed while running checkBackupFile: /,
      );
      // A catalog that is not on this host is checked on the calling thread.
      expect(await validate('TP11RT', 2, missingWorkerUrl, elsewhereStorage())).toEqual({
        problems: [],
        warnings: [],
      });
    }, 60_000);

    it('-j 2 on workers names a damaged uncompressed page as -j 1 does', async () => {
      const page = await damageSecondPage('TP11RT', () => 4000);
      const inThread = await validate('TP11RT', 1, workerUrl);
      const workers = await validate('TP11RT', 2, workerUrl);
      expect(workers).toEqual(inThread);
      expect(workers.problems).toHaveLength(2);
      expect(workers.problems[0]).toMatch(
        new RegExp(
          `^Corruption detected in file "${page.path}", block ${page.block}: page verification failed, calculated checksum \\d+ but expected \\d+$`,
        ),
      );
      expect(workers.problems[1]).toMatch(
        new RegExp(`^Invalid CRC of backup file "${page.path}": [0-9A-F]+\\. Expected [0-9A-F]+$`),
      );
      expect(workers.warnings).toEqual(workers.problems);
    }, 60_000);

    it('-j 2 on workers names a damaged zlib page as -j 1 does', async () => {
      const page = await damageSecondPage('TP11R6', (payloadBytes) => Math.floor(payloadBytes / 2));
      const inThread = await validate('TP11R6', 1, workerUrl);
      const workers = await validate('TP11R6', 2, workerUrl);
      expect(workers).toEqual(inThread);
      expect(workers.problems[0]).toMatch(
        new RegExp(
          `^Corruption detected in file "${page.path}", block ${page.block}: cannot decompress the zlib page`,
        ),
      );
      expect(workers.problems.at(-1)).toMatch(
        new RegExp(`^Invalid CRC of backup file "${page.path}": `),
      );
    }, 60_000);
  });
});

describe('cancellation', () => {
  it('stops a restore job on a worker when the signal aborts, with the error of the calling thread', async () => {
    const workers = new FileWorkerPool(2, { workerUrl });
    try {
      const job = copyJob('16400', 'none', 'worker');
      const { output } = await workers.run(storage, 'copyDataFile', {
        ...job,
        destinationPath: join(dir, 'worker', '16400.cancel'),
      });
      const mapPath = join(dir, 'worker', 'map.cancel');
      writeFileSync(mapPath, output.headerSlice!.bytes);
      const entry: FileEntry = {
        path: 'base/1/16400',
        size: output.writeSizeBytes,
        mode: 0o100600,
        isDatafile: true,
        isCfs: false,
        crc: output.crc,
        compressAlg: 'none',
        externalDirNum: 0,
        dbOid: 1,
        fullSize: undefined,
        segno: 0,
        linked: undefined,
        nBlocks: output.nBlocks,
        nHeaders: output.storedPages,
        hdrCrc: output.headerSlice!.hdrCrc,
        hdrOff: 0n,
        hdrSize: output.headerSlice!.bytes.length,
      };
      const restoreJob = {
        destinationPath: join(dir, 'restored', '16400.cancel'),
        displayPath: entry.path,
        mode: 0o600,
        nBlocks: entry.nBlocks,
        sources: [
          {
            backupId: 'T1',
            path: join(dir, 'worker', '16400.cancel'),
            compressAlg: 'none' as const,
            programVersionNum: 20500,
            headerMap: { mapPath, entry },
          },
        ],
        newestFirst: false,
      };
      const controller = new AbortController();
      const running = workers.run(storage, 'restoreDataFile', restoreJob, {
        signal: controller.signal,
      });
      controller.abort();
      const error = await running.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StrataError);
      expect(error).toMatchObject({
        code: 'interrupted',
        message: 'Interrupted during data file restore',
      });
      // A signal aborted before the job starts stops it as well; the worker then runs the next job.
      await expect(
        workers.run(storage, 'restoreDataFile', restoreJob, { signal: AbortSignal.abort() }),
      ).rejects.toMatchObject({ code: 'interrupted' });
      const whole = await workers.run(storage, 'restoreDataFile', restoreJob);
      expect(whole.output.writtenBytes).toBe(2500 * BLCKSZ);
      expect(
        readFileSync(restoreJob.destinationPath).equals(readFileSync(join(dir, 'pgdata', '16400'))),
      ).toBe(true);
    } finally {
      await workers.close();
    }
  }, 60_000);
});
