import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '../core/format/crc32c.js';
import { pgChecksumPage } from '../core/format/page.js';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { strataCliPath } from '../core/testing/pgBinaries.js';

/**
 * `npm run bench`: times Strata against a plain copy of the same data directory (tar piped into
 * tar) measured in the same run, and prints ratios. Nothing here is a pass/fail threshold.
 * STRATA_BENCH_MB sets the generated database size (default 1024).
 */
const targetMb = Number(process.env['STRATA_BENCH_MB'] ?? 1024);
const major = Number(process.env['STRATA_BENCH_PG'] ?? 17);

function timeMs(work: () => void): number {
  const started = performance.now();
  work();
  return performance.now() - started;
}

function strata(args: string[]): void {
  execFileSync(process.execPath, [strataCliPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function duSizeBytes(path: string): number {
  return Number(execFileSync('du', ['-sb', path]).toString().split('\t')[0]);
}

function benchFormats(): Array<[string, string]> {
  const buffer = Buffer.alloc(64 << 20);
  for (let i = 0; i < buffer.length; i += 4) buffer.writeUInt32LE((i * 2654435761) >>> 0, i);
  const crcMs = timeMs(() => crc32c(buffer));
  const page = buffer.subarray(0, 8192);
  const pages = 20000;
  const checksumMs = timeMs(() => {
    for (let i = 0; i < pages; i++) pgChecksumPage(page, i);
  });
  return [
    ['CRC32C', `${((buffer.length / 2 ** 20) / (crcMs / 1000)).toFixed(0)} MB/s`],
    ['page checksum', `${((pages * 8192) / 2 ** 20 / (checksumMs / 1000)).toFixed(0)} MB/s`],
  ];
}

async function main(): Promise<void> {
  const rows: Array<[string, string]> = [...benchFormats()];
  const scratch = makeTempDir('strata-bench-');
  const catalog = join(scratch.path, 'catalog');
  const cluster = await TestCluster.create({ major, settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
  try {
    await cluster.start();
    const rowsNeeded = Math.ceil((targetMb * 2 ** 20) / 130);
    await cluster.query('postgres', 'CREATE TABLE bench (id bigint PRIMARY KEY, payload text)');
    for (let start = 0; start < rowsNeeded; start += 1_000_000) {
      await cluster.query(
        'postgres',
        `INSERT INTO bench SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(${start + 1}, ${Math.min(start + 1_000_000, rowsNeeded)}) g`,
      );
    }
    await cluster.query('postgres', 'CHECKPOINT');
    const pgdataBytes = duSizeBytes(cluster.dataDir);
    rows.push(['data directory', `${(pgdataBytes / 2 ** 20).toFixed(0)} MB`]);

    const copyDir = join(scratch.path, 'tar-copy');
    mkdirSync(copyDir);
    const tarMs = timeMs(() =>
      execFileSync('bash', ['-c', `tar -C "${cluster.dataDir}" -cf - . | tar -C "${copyDir}" -xf -`]),
    );
    rmSync(copyDir, { recursive: true, force: true });
    rows.push(['tar pipe copy (baseline)', `${(tarMs / 1000).toFixed(2)} s`]);

    strata(['init', '-B', catalog]);
    strata(['add-instance', '-B', catalog, '--instance', 'bench', '-D', cluster.dataDir]);
    const connection = ['-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', '-d', 'postgres'];
    for (const [label, extra] of [
      ['FULL --stream -j 1', ['-j', '1']],
      ['FULL --stream -j 2', ['-j', '2']],
      ['FULL --stream -j 2 zlib', ['-j', '2', '--compress-algorithm=zlib']],
    ] as const) {
      const ms = timeMs(() => strata(['backup', '-B', catalog, '--instance', 'bench', '-b', 'FULL', '--stream', '--no-validate', ...connection, ...extra]));
      rows.push([label, `${(ms / 1000).toFixed(2)} s (${(ms / tarMs).toFixed(2)}x tar)`]);
    }
    const backupDirs = execFileSync('ls', [join(catalog, 'backups', 'bench')]).toString().trim().split('\n');
    const lastBackup = backupDirs.filter((name) => name !== 'pg_probackup.conf').sort().at(-1)!;
    rows.push(['zlib backup size', `${(duSizeBytes(join(catalog, 'backups', 'bench', lastBackup)) / 2 ** 20).toFixed(0)} MB`]);
    const validateMs = timeMs(() => strata(['validate', '-B', catalog, '--instance', 'bench', '-i', lastBackup, '-j', '2']));
    rows.push(['validate -j 2 (zlib backup)', `${(validateMs / 1000).toFixed(2)} s (${(validateMs / tarMs).toFixed(2)}x tar)`]);
    for (const threads of ['1', '2']) {
      const target = join(scratch.path, `restore-${threads}`);
      const ms = timeMs(() => strata(['restore', '-B', catalog, '--instance', 'bench', '-i', lastBackup, '-D', target, '-j', threads, '--no-validate']));
      rows.push([`restore -j ${threads} (zlib backup)`, `${(ms / 1000).toFixed(2)} s (${(ms / tarMs).toFixed(2)}x tar)`]);
      if (threads === '2') {
        const restored = await startRestoredCluster(major, target);
        const count = (await restored.query<{ n: string }>('postgres', 'SELECT count(*)::text AS n FROM bench'))[0]!.n;
        rows.push(['restored rows (check)', count]);
        await restored.destroy();
      }
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

await main();
