import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, makeTempDir } from '../core/testing/cluster.js';
import { strataCliPath } from '../core/testing/pgBinaries.js';
import { TestSshd } from '../core/testing/sshd.js';

/**
 * `npm run bench`, remote part: backups and a restore of a PostgreSQL data directory reached
 * through a real OpenSSH server on 127.0.0.1 (the Strata agent reads and writes PGDATA there),
 * against the same commands on local files, and the bytes that crossed the SSH connection for a
 * DELTA backup after a small change, against the data size. Nothing here is a pass/fail threshold.
 * STRATA_BENCH_MB sets the generated database size (default 1024).
 */
const targetMb = Number(process.env['STRATA_BENCH_MB'] ?? 1024);
const major = Number(process.env['STRATA_BENCH_PG'] ?? 17);
const instance = 'bench';

interface Run {
  ms: number;
  stderr: string;
}

function strata(args: string[]): Run {
  const started = performance.now();
  const result = spawnSync(process.execPath, [strataCliPath, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`strata ${args.join(' ')} failed:\n${result.stderr}`);
  return { ms, stderr: result.stderr };
}

/** The CLI's LOG line of a remote command: bytes over SSH and bytes of files the agent touched. */
function remoteTraffic(stderr: string): {
  sentBytes: number;
  receivedBytes: number;
  agentReadBytes: number;
} {
  const match =
    /(\d+) bytes sent and (\d+) bytes received over SSH; the agent read (\d+) and wrote \d+ bytes of files/.exec(
      stderr,
    );
  if (!match) throw new Error(`no remote traffic line in:\n${stderr}`);
  return {
    sentBytes: Number(match[1]),
    receivedBytes: Number(match[2]),
    agentReadBytes: Number(match[3]),
  };
}

function backupId(stderr: string): string {
  return /INFO: Backup (\w+) completed/.exec(stderr)![1]!;
}

function duSizeBytes(path: string, exclude?: string): number {
  const args = exclude ? ['-sb', `--exclude=${exclude}`, path] : ['-sb', path];
  return Number(execFileSync('du', args).toString().split('\t')[0]);
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const rate = (bytes: number, ms: number) => `${(bytes / 2 ** 20 / (ms / 1000)).toFixed(0)} MB/s`;

async function main(): Promise<void> {
  const rows: Array<[string, string]> = [];
  const scratch = makeTempDir('strata-bench-remote-');
  const sshd = await TestSshd.start();
  const cluster = await TestCluster.create({
    major,
    settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' },
  });
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
    // With data checksums on, the first scan that sets hint bits rewrites (and WAL-logs) every
    // page: settle them now, so that the DELTA below sees only the pages the change touches.
    await cluster.query('postgres', 'VACUUM (FREEZE, ANALYZE) bench');
    await cluster.query('postgres', 'CHECKPOINT');
    const pgdataBytes = duSizeBytes(cluster.dataDir);
    // What a backup copies from PGDATA: everything but the WAL directory.
    const dataBytes = duSizeBytes(cluster.dataDir, 'pg_wal');
    rows.push(['data directory (without pg_wal)', `${mb(pgdataBytes)} (${mb(dataBytes)})`]);

    const connection = cluster.connectionArgs();
    const remote = sshd.remoteArgs();
    const localCatalog = join(scratch.path, 'local-catalog');
    const remoteCatalog = join(scratch.path, 'remote-catalog');
    for (const catalog of [localCatalog, remoteCatalog]) strata(['init', '-B', catalog]);
    strata(['add-instance', '-B', localCatalog, '--instance', instance, '-D', cluster.dataDir]);
    // add-instance reads pg_control over SSH: this first remote command copies the agent to the
    // host, so the timed ones find it there.
    strata([
      'add-instance',
      '-B',
      remoteCatalog,
      '--instance',
      instance,
      '-D',
      cluster.dataDir,
      ...remote,
    ]);
    strata(['set-config', '-B', remoteCatalog, '--instance', instance, ...remote]);

    let fullReceivedBytes = 0;
    for (const threads of [1, 4]) {
      const backupArgs = [
        '--instance',
        instance,
        '-b',
        'FULL',
        '--stream',
        '-j',
        String(threads),
        '--no-validate',
        ...connection,
      ];
      const local = strata(['backup', '-B', localCatalog, ...backupArgs]);
      const overSsh = strata([
        'backup',
        '-B',
        remoteCatalog,
        ...backupArgs,
        '--log-level-console=LOG',
      ]);
      const traffic = remoteTraffic(overSsh.stderr);
      fullReceivedBytes = traffic.receivedBytes;
      rows.push([
        `FULL backup -j ${threads}, local PGDATA`,
        `${seconds(local.ms)} (${rate(dataBytes, local.ms)})`,
      ]);
      rows.push([
        `FULL backup -j ${threads}, PGDATA over SSH`,
        `${seconds(overSsh.ms)} (${rate(dataBytes, overSsh.ms)}, ${(overSsh.ms / local.ms).toFixed(2)}x local); ${mb(traffic.receivedBytes)} received`,
      ]);
    }

    const zlib = strata([
      'backup',
      '-B',
      remoteCatalog,
      '--instance',
      instance,
      '-b',
      'FULL',
      '--stream',
      '-j',
      '4',
      '--no-validate',
      '--compress-algorithm=zlib',
      '--compress-level=1',
      ...connection,
      '--log-level-console=LOG',
    ]);
    const zlibTraffic = remoteTraffic(zlib.stderr);
    rows.push([
      'FULL backup -j 4 zlib, PGDATA over SSH',
      `${seconds(zlib.ms)}; compressed on the remote side: ${mb(zlibTraffic.receivedBytes)} received for ${mb(zlibTraffic.agentReadBytes)} read (${((100 * zlibTraffic.receivedBytes) / zlibTraffic.agentReadBytes).toFixed(1)}%)`,
    ]);

    // A small change: 0.1% of the rows, spread over the table.
    await cluster.query('postgres', 'UPDATE bench SET payload = md5(payload) WHERE id % 1000 = 0');
    await cluster.query('postgres', 'CHECKPOINT');
    const delta = strata([
      'backup',
      '-B',
      remoteCatalog,
      '--instance',
      instance,
      '-b',
      'DELTA',
      '--stream',
      '-j',
      '4',
      '--no-validate',
      ...connection,
      '--log-level-console=LOG',
    ]);
    const deltaTraffic = remoteTraffic(delta.stderr);
    const deltaBytes = deltaTraffic.receivedBytes + deltaTraffic.sentBytes;
    rows.push([
      'DELTA backup after 0.1% rows changed, over SSH',
      `${seconds(delta.ms)}; ${mb(deltaBytes)} crossed the connection (${mb(deltaTraffic.receivedBytes)} received) for ${mb(dataBytes)} of data: ` +
        `${((100 * deltaBytes) / dataBytes).toFixed(2)}% of the data, ${((100 * deltaBytes) / fullReceivedBytes).toFixed(1)}% of a FULL backup's transfer; ` +
        `the agent read ${mb(deltaTraffic.agentReadBytes)} there`,
    ]);

    const target = join(scratch.path, 'restored');
    const restore = strata([
      'restore',
      '-B',
      remoteCatalog,
      '--instance',
      instance,
      '-i',
      backupId(delta.stderr),
      '-D',
      target,
      '-j',
      '4',
      '--no-validate',
      ...remote,
      '--log-level-console=LOG',
    ]);
    const restoreTraffic = remoteTraffic(restore.stderr);
    rows.push([
      'restore -j 4 onto the remote host',
      `${seconds(restore.ms)} (${rate(dataBytes, restore.ms)}); ${mb(restoreTraffic.sentBytes)} sent over SSH`,
    ]);

    // The same backup again over what the restore left: the agent compares the pages there.
    const again = strata([
      'restore',
      '-B',
      remoteCatalog,
      '--instance',
      instance,
      '-i',
      backupId(delta.stderr),
      '-D',
      target,
      '-I',
      'checksum',
      '--no-validate',
      ...remote,
      '--log-level-console=LOG',
    ]);
    const againTraffic = remoteTraffic(again.stderr);
    rows.push([
      'incremental restore (-I checksum) over it',
      `${seconds(again.ms)}; ${mb(againTraffic.sentBytes + againTraffic.receivedBytes)} crossed the connection, the agent read ${mb(againTraffic.agentReadBytes)} there`,
    ]);
    rmSync(target, { recursive: true, force: true });

    const checkdb = strata([
      'checkdb',
      '-B',
      remoteCatalog,
      '--instance',
      instance,
      ...connection,
      '--log-level-console=LOG',
    ]);
    const checkdbTraffic = remoteTraffic(checkdb.stderr);
    rows.push([
      'checkdb of the remote PGDATA',
      `${seconds(checkdb.ms)} (${rate(dataBytes, checkdb.ms)}); ${mb(checkdbTraffic.receivedBytes)} received for ${mb(checkdbTraffic.agentReadBytes)} checked there`,
    ]);
  } finally {
    await cluster.destroy();
    await sshd.stop();
    scratch.remove();
  }
  const width = Math.max(...rows.map(([label]) => label.length));
  process.stdout.write(
    `\nStrata remote benchmark (OpenSSH on 127.0.0.1), PostgreSQL ${major}, ${targetMb} MB target\n\n`,
  );
  for (const [label, value] of rows) process.stdout.write(`${label.padEnd(width)}  ${value}\n`);
}

await main();
