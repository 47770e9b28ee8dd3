import { build } from 'esbuild';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { threadId as mainThreadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import type { CompressAlgorithm, FileEntry } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import { BLCKSZ, pgChecksumPage } from '../../format/page.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { repoRoot } from '../../testing/pgBinaries.js';
import {
  copyDataFileByRanges,
  copyDataFilePages,
  copyPageRange,
  type DataFileCopyJob,
  type DataFileCopyOutput,
} from '../backup/dataFileCopy.js';
import { PageHeaderMapWriter } from '../backup/pageHeaderMapWriter.js';
import { createFileCopyPool } from './fileCopyPool.js';
import { FileWorkerPool, bundledWorkerUrl } from './workerPool.js';

const storage = new LocalStorage();
const fixtures = join(repoRoot, 'core', 'format', 'fixtures');
const algorithms: CompressAlgorithm[] = ['none', 'zlib', 'pglz', 'lz4', 'zstd'];
let dir: string;
let workerUrl: URL;
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

        const headers = decodePageHeaderSlice(
          output.headerSlice!.bytes,
          output.storedPages,
          output.headerSlice!.hdrCrc,
          'map',
        );
        const checked = await workers.run(storage, 'checkDataFile', {
          check: {
            fullPath: job.destinationPath,
            relPath: entry.path,
            segno: 0,
            compressAlg: algorithm,
            checksumVersion: 1,
            stopLsn: 0n,
            programVersionNum: 20500,
            headers,
            sizeBytes: entry.size,
          },
          crcKind: 'crc32c',
        });
        expect(checked.output).toEqual({ crc: output.crc, report: { problems: [], warnings: [] } });
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
