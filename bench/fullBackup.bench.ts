import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  compressPage,
  decompressPage,
  loadPageCodec,
  type PageCompressAlgorithm,
} from '../core/format/compression.js';
import { crc32c } from '../core/format/crc32c.js';
import { BLCKSZ, pgChecksumPage } from '../core/format/page.js';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { strataCliPath } from '../core/testing/pgBinaries.js';

/**
 * `npm run bench`: times Strata against a plain copy of the same data directory (tar piped into
 * tar) measured in the same run, and prints ratios. Nothing here is a pass/fail threshold.
 * STRATA_BENCH_MB sets the generated database size (default 1024).
 */
const targetMb = Number(process.env['STRATA_BENCH_MB'] ?? 1024);
const major = Number(process.env['STRATA_BENCH_PG'] ?? 17);
const codecs: PageCompressAlgorithm[] = ['zlib', 'pglz', 'lz4', 'zstd'];

function timeMs(work: () => void): number {
  const started = performance.now();
  work();
  return performance.now() - started;
}

/** Runs the CLI; returns its stderr (pg_probackup's messages go there). */
function strata(args: string[]): string {
  const result = spawnSync(process.execPath, [strataCliPath, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (result.status !== 0) throw new Error(`strata ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stderr;
}

function strataStdout(args: string[]): string {
  return execFileSync(process.execPath, [strataCliPath, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
}

function duSizeBytes(path: string): number {
  return Number(execFileSync('du', ['-sb', path]).toString().split('\t')[0]);
}

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MB`;
}

function mbPerSec(bytes: number, ms: number): string {
  return `${(bytes / 2 ** 20 / (ms / 1000)).toFixed(0)} MB/s`;
}

async function benchFormats(heapPages: Buffer[]): Promise<Array<[string, string]>> {
  const buffer = Buffer.alloc(64 << 20);
  for (let i = 0; i < buffer.length; i += 4) buffer.writeUInt32LE((i * 2654435761) >>> 0, i);
  const crcMs = timeMs(() => crc32c(buffer));
  const page = buffer.subarray(0, BLCKSZ);
  const pages = 20000;
  const checksumMs = timeMs(() => {
    for (let i = 0; i < pages; i++) pgChecksumPage(page, i);
  });
  const rows: Array<[string, string]> = [
    ['CRC32C', mbPerSec(buffer.length, crcMs)],
    ['page checksum', mbPerSec(pages * BLCKSZ, checksumMs)],
  ];
  // One thread, the benchmark table's own heap pages: what each codec costs per page.
  const bytes = heapPages.length * BLCKSZ;
  for (const algorithm of codecs) {
    await loadPageCodec(algorithm);
    let compressed: Buffer[] = [];
    const compressMs = timeMs(() => {
      compressed = heapPages.map((heapPage) => compressPage(heapPage, algorithm, 1) ?? heapPage);
    });
    const decompressMs = timeMs(() => {
      for (const payload of compressed) {
        if (payload.length < BLCKSZ) decompressPage(payload, algorithm, 'bench');
      }
    });
    const ratio = compressed.reduce((sum, payload) => sum + payload.length, 0) / bytes;
    rows.push([
      `${algorithm} page codec (1 thread)`,
      `compress ${mbPerSec(bytes, compressMs)}, decompress ${mbPerSec(bytes, decompressMs)}, ratio ${ratio.toFixed(2)}`,
    ]);
  }
  return rows;
}

async function main(): Promise<void> {
  const rows: Array<[string, string]> = [];
  const scratch = makeTempDir('strata-bench-');
  const catalog = join(scratch.path, 'catalog');
  // Archived WAL feeds PAGE backups; WAL summaries (PostgreSQL 17+) feed SUMMARY backups.
  const cluster = await TestCluster.create({
    major,
    archiveTo: { backupPath: catalog, instance: 'bench' },
    settings: {
      max_wal_size: '4GB',
      checkpoint_timeout: '30min',
      ...(major >= 17 ? { summarize_wal: 'on' } : {}),
    },
  });
  try {
    strata(['init', '-B', catalog]);
    strata(['add-instance', '-B', catalog, '--instance', 'bench', '-D', cluster.dataDir]);
    await cluster.start();
    const rowsNeeded = Math.ceil((targetMb * 2 ** 20) / 130);
    await cluster.query('postgres', 'CREATE TABLE bench (id bigint PRIMARY KEY, payload text)');
    for (let start = 0; start < rowsNeeded; start += 1_000_000) {
      await cluster.query(
        'postgres',
        `INSERT INTO bench SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(${start + 1}, ${Math.min(start + 1_000_000, rowsNeeded)}) g`,
      );
    }
    // Hint bits set later (with data checksums, each first touch logs a full-page image) would
    // put a table's worth of WAL into whichever backup runs first: set them now.
    await cluster.query('postgres', 'VACUUM ANALYZE bench');
    await cluster.query('postgres', 'CHECKPOINT');
    const [relation] = await cluster.query<{ path: string }>(
      'postgres',
      "SELECT pg_relation_filepath('bench') AS path",
    );
    const heap = Buffer.alloc(2000 * BLCKSZ);
    const heapFd = openSync(join(cluster.dataDir, relation!.path), 'r');
    readSync(heapFd, heap, 0, heap.length, 0);
    closeSync(heapFd);
    const heapPages = Array.from({ length: heap.length / BLCKSZ }, (_, i) =>
      heap.subarray(i * BLCKSZ, (i + 1) * BLCKSZ),
    );
    rows.push(...(await benchFormats(heapPages)));

    const pgdataBytes = duSizeBytes(cluster.dataDir);
    rows.push(['data directory', mb(pgdataBytes)]);
    const copyDir = join(scratch.path, 'tar-copy');
    mkdirSync(copyDir);
    const tarMs = timeMs(() =>
      execFileSync('bash', [
        '-c',
        `tar -C "${cluster.dataDir}" -cf - . | tar -C "${copyDir}" -xf -`,
      ]),
    );
    rmSync(copyDir, { recursive: true, force: true });
    rows.push(['tar pipe copy (baseline)', `${(tarMs / 1000).toFixed(2)} s`]);
    const versusTar = (ms: number) =>
      `${(ms / 1000).toFixed(2)} s (${(ms / tarMs).toFixed(2)}x tar)`;

    await waitForArchiver(cluster);
    const connection = cluster.connectionArgs();
    const backupIds = new Map<string, string>();
    // pg_probackup refuses pglz with more than one thread, so pglz runs -j 1 only.
    for (const [label, algorithm, threads] of [
      ['none -j 1', 'none', '1'],
      ['none -j 2', 'none', '2'],
      ['zlib -j 1', 'zlib', '1'],
      ['zlib -j 2', 'zlib', '2'],
      ['pglz -j 1', 'pglz', '1'],
      ['lz4 -j 1', 'lz4', '1'],
      ['lz4 -j 2', 'lz4', '2'],
      ['zstd -j 1', 'zstd', '1'],
      ['zstd -j 2', 'zstd', '2'],
    ] as const) {
      let stderr = '';
      const ms = timeMs(() => {
        stderr = strata([
          'backup',
          '-B',
          catalog,
          '--instance',
          'bench',
          '-b',
          'FULL',
          '--stream',
          '--no-validate',
          `--compress-algorithm=${algorithm}`,
          '-j',
          threads,
          ...connection,
        ]);
      });
      const backupId = /INFO: Backup (\w+) completed/.exec(stderr)![1]!;
      backupIds.set(label, backupId);
      // data-bytes leaves out the streamed WAL, whose amount depends on what the server did meanwhile.
      const shown = JSON.parse(
        strataStdout([
          'show',
          '-B',
          catalog,
          '--instance',
          'bench',
          '-i',
          backupId,
          '--format=json',
        ]),
      ) as Array<{ backups: Array<{ 'data-bytes': number; 'uncompressed-bytes': number }> }>;
      const backup = shown[0]!.backups[0]!;
      rows.push([
        `FULL --stream ${label}`,
        `${versusTar(ms)}, data ${mb(backup['data-bytes'])} (${(backup['data-bytes'] / backup['uncompressed-bytes']).toFixed(2)} of ${mb(backup['uncompressed-bytes'])})`,
      ]);
    }

    for (const [label, threads] of [
      ['none -j 2', '1'],
      ['none -j 2', '2'],
      ['zstd -j 2', '1'],
      ['zstd -j 2', '2'],
    ] as const) {
      const ms = timeMs(() =>
        strata([
          'validate',
          '-B',
          catalog,
          '--instance',
          'bench',
          '-i',
          backupIds.get(label)!,
          '-j',
          threads,
        ]),
      );
      rows.push([`validate -j ${threads} (${label.split(' ')[0]} backup)`, versusTar(ms)]);
    }
    for (const [label, threads] of [
      ['none -j 2', '1'],
      ['none -j 2', '2'],
      ['zstd -j 2', '1'],
      ['zstd -j 2', '2'],
    ] as const) {
      const algorithm = label.split(' ')[0]!;
      const target = join(scratch.path, `restore-${algorithm}-${threads}`);
      const ms = timeMs(() =>
        strata([
          'restore',
          '-B',
          catalog,
          '--instance',
          'bench',
          '-i',
          backupIds.get(label)!,
          '-D',
          target,
          '-j',
          threads,
          '--no-validate',
        ]),
      );
      rows.push([`restore -j ${threads} (${algorithm} backup)`, versusTar(ms)]);
      if (algorithm === 'zstd' && threads === '2') {
        const restored = await startRestoredCluster(major, target);
        const count = (
          await restored.query<{ n: string }>('postgres', 'SELECT count(*)::text AS n FROM bench')
        )[0]!.n;
        rows.push(['restored rows (check)', `${count} of ${rowsNeeded}`]);
        await restored.destroy();
      }
      rmSync(target, { recursive: true, force: true });
    }

    // Incremental backups after a change of 1% of the rows (a contiguous 1% of the table's pages),
    // each against its parent.
    const modes =
      major >= 17 ? (['DELTA', 'PAGE', 'SUMMARY'] as const) : (['DELTA', 'PAGE'] as const);
    let slice = 0;
    let newestIncremental = '';
    for (const mode of modes) {
      for (const threads of ['1', '2']) {
        await cluster.query(
          'postgres',
          `UPDATE bench SET payload = 'changed' || payload WHERE id > ${(slice * rowsNeeded) / 100} AND id <= ${(++slice * rowsNeeded) / 100}`,
        );
        await waitForArchiver(cluster);
        let stderr = '';
        const ms = timeMs(() => {
          stderr = strata([
            'backup',
            '-B',
            catalog,
            '--instance',
            'bench',
            '-b',
            mode,
            '--stream',
            '--no-validate',
            '-j',
            threads,
            ...connection,
          ]);
        });
        newestIncremental = /INFO: Backup (\w+) completed/.exec(stderr)![1]!;
        const shown = JSON.parse(
          strataStdout([
            'show',
            '-B',
            catalog,
            '--instance',
            'bench',
            '-i',
            newestIncremental,
            '--format=json',
          ]),
        );
        const dataBytes = Number(shown[0].backups[0]['data-bytes']);
        rows.push([
          `${mode} -j ${threads} after 1% changed`,
          `${versusTar(ms)}, ${mb(dataBytes)} stored`,
        ]);
      }
    }
    for (const threads of ['1', '2']) {
      const target = join(scratch.path, `restore-chain-${threads}`);
      const ms = timeMs(() =>
        strata([
          'restore',
          '-B',
          catalog,
          '--instance',
          'bench',
          '-i',
          newestIncremental,
          '-D',
          target,
          '-j',
          threads,
          '--no-validate',
        ]),
      );
      rows.push([
        `restore -j ${threads} (chain of ${modes.length * 2} incrementals)`,
        versusTar(ms),
      ]);
      rmSync(target, { recursive: true, force: true });
    }
  } finally {
    await cluster.destroy();
    scratch.remove();
  }
  const width = Math.max(...rows.map(([label]) => label.length));
  process.stdout.write(`\nStrata benchmark, PostgreSQL ${major}, ${targetMb} MB target\n\n`);
  for (const [label, value] of rows) process.stdout.write(`${label.padEnd(width)}  ${value}\n`);
}

/** Switches WAL and waits until the archiver has pushed it, so archiving does not run during a timing. */
async function waitForArchiver(cluster: TestCluster): Promise<void> {
  const name = (
    await cluster.query<{ name: string }>(
      'postgres',
      'SELECT pg_walfile_name(pg_switch_wal()) AS name',
    )
  )[0]!.name;
  for (let attempt = 0; attempt < 6000; attempt++) {
    const last = (
      await cluster.query<{ last: string | null }>(
        'postgres',
        'SELECT last_archived_wal AS last FROM pg_stat_archiver',
      )
    )[0]!.last;
    if (last !== null && last >= name) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the archiver did not reach ${name}`);
}

await main();
