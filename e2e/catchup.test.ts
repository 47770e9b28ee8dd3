import {
  appendFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn } from '../core/format/lsn.js';
import { parseControlFile } from '../core/format/pgControl.js';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { fingerprintCluster, generateData } from '../core/testing/data.js';
import { runStrata, strata } from './strataCli.js';

const major = 15;

/** Bytes of a pg_probackup pretty size (`35MB`, `512kB`, `8192B`). */
function bytesOf(pretty: string): number {
  const match = /^(\d+)(B|kB|MB|GB|TB)$/.exec(pretty);
  if (!match) throw new Error(`not a pretty size: ${pretty}`);
  const unit = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[match[2] as 'B'];
  return Number(match[1]) * unit;
}

function transferredDataBytes(stderr: string): number {
  const match =
    /INFO: Databases synchronized\. Transfered datafiles size: (\S+), transfered wal size: (\S+), time elapsed: \S+/.exec(
      stderr,
    );
  if (!match) throw new Error(`no "Databases synchronized" line in:\n${stderr}`);
  return bytesOf(match[1]!);
}

/** Every entry under a directory with its type, size, mode and mtime (symlinks not followed). */
function listingWithMtimes(root: string): Record<string, string> {
  const listing: Record<string, string> = {};
  const walk = (relative: string): void => {
    for (const entry of readdirSync(join(root, relative), { withFileTypes: true })) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      const stat = lstatSync(join(root, path));
      const extra = entry.isSymbolicLink() ? readlinkSync(join(root, path)) : '';
      listing[path] = `${stat.mode}:${stat.size}:${stat.mtimeMs}:${extra}`;
      if (entry.isDirectory()) walk(path);
    }
  };
  walk('');
  return listing;
}

/** Makes a caught-up data directory a streaming standby of the source. */
function configureStandby(dataDir: string, primaryPort: number): void {
  writeFileSync(join(dataDir, 'standby.signal'), '');
  appendFileSync(
    join(dataDir, 'postgresql.auto.conf'),
    `primary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=postgres'\n`,
  );
}

describe('catchup', () => {
  let source: TestCluster;
  let scratch: ReturnType<typeof makeTempDir>;
  let destination: string;
  let tablespaceSource: string;
  let tablespaceDestination: string;
  const connection = (): string[] => source.connectionArgs();

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-catchup-');
    destination = join(scratch.path, 'destination');
    tablespaceSource = join(scratch.path, 'tbs-source');
    tablespaceDestination = join(scratch.path, 'tbs-destination');
    mkdirSync(tablespaceSource);
    source = await TestCluster.create({ major });
    await source.start();
    await generateData(source, { databases: ['shop', 'crm'], rowsPerTable: 40000 });
    await source.query('postgres', `CREATE TABLESPACE outside LOCATION '${tablespaceSource}'`);
    await source.query(
      'shop',
      'CREATE TABLE archived (id int PRIMARY KEY, note text) TABLESPACE outside',
    );
    await source.query(
      'shop',
      "INSERT INTO archived SELECT g, repeat('x', 50) || g FROM generate_series(1, 5000) g",
    );
  });

  afterAll(async () => {
    await source?.destroy();
    scratch?.remove();
  });

  it('refuses what pg_probackup refuses before touching anything', async () => {
    const empty = join(scratch.path, 'empty');
    const page = await runStrata([
      'catchup',
      '-b',
      'PAGE',
      '--source-pgdata',
      source.dataDir,
      '--destination-pgdata',
      empty,
      ...connection(),
    ]);
    expect(page.code).toBe(1);
    expect(page.stderr).toContain(
      'ERROR: Only "FULL", "PTRACK" and "DELTA" modes are supported with the "catchup" command',
    );
    const noDestination = await runStrata([
      'catchup',
      '-b',
      'FULL',
      '--source-pgdata',
      source.dataDir,
      ...connection(),
    ]);
    expect(noDestination.stderr).toContain(
      'ERROR: You must specify "--destination-pgdata" option with the "catchup" command',
    );

    const delta = await runStrata([
      'catchup',
      '-b',
      'DELTA',
      '--source-pgdata',
      source.dataDir,
      '--destination-pgdata',
      empty,
      ...connection(),
    ]);
    expect(delta.code).toBe(1);
    expect(delta.stderr).toContain('INFO: --stream is required, forcing stream mode');
    expect(delta.stderr).toContain(
      `ERROR: "${empty}" is empty, but incremental catchup mode requested.`,
    );

    const unmapped = await runStrata([
      'catchup',
      '-b',
      'FULL',
      '--stream',
      '--source-pgdata',
      source.dataDir,
      '--destination-pgdata',
      empty,
      ...connection(),
    ]);
    expect(unmapped.code).toBe(1);
    expect(unmapped.stderr).toContain(
      `ERROR: Local catchup executed, but source database contains tablespace ("${tablespaceSource}"), that is not listed in the map`,
    );

    mkdirSync(join(scratch.path, 'occupied'));
    writeFileSync(join(scratch.path, 'occupied', 'file'), 'x');
    const full = await runStrata([
      'catchup',
      '-b',
      'FULL',
      '--source-pgdata',
      source.dataDir,
      '--destination-pgdata',
      join(scratch.path, 'occupied'),
      ...connection(),
    ]);
    expect(full.code).toBe(1);
    expect(full.stderr).toContain(
      `ERROR: Can't perform full catchup into non-empty directory "${join(scratch.path, 'occupied')}".`,
    );

    const foreign = await TestCluster.create({ major });
    try {
      const mismatch = await runStrata([
        'catchup',
        '-b',
        'DELTA',
        '--source-pgdata',
        source.dataDir,
        '--destination-pgdata',
        foreign.dataDir,
        ...connection(),
      ]);
      expect(mismatch.code).toBe(1);
      expect(mismatch.stderr).toMatch(
        new RegExp(
          `ERROR: Database identifiers mismatch: we connected to DB id \\d+, but in "${foreign.dataDir}" we found id \\d+`,
        ),
      );
    } finally {
      await foreign.destroy();
    }
    expect(existsSync(empty)).toBe(false);
  });

  it('copies a running cluster FULL, then brings the stopped copy forward with DELTA; both start with equal data', async () => {
    const beforeFull = await fingerprintCluster(source);
    const full = await strata([
      'catchup',
      '-b',
      'FULL',
      '--stream',
      '-j',
      '3',
      '--source-pgdata',
      source.dataDir,
      '--destination-pgdata',
      destination,
      '-T',
      `${tablespaceSource}=${tablespaceDestination}`,
      '-x',
      'postgresql.auto.conf.tmp',
      ...connection(),
    ]);
    expect(full.stderr).toMatch(
      /INFO: Catchup start, pg_probackup version: 2\.5\.0, PostgreSQL version: 15\.\d+, remote: false/,
    );
    expect(full.stderr).toContain('INFO: Database catchup start');
    expect(full.stderr).toMatch(/INFO: Source PGDATA size: \d+[kMG]?B \(excluded 0\)/);
    expect(full.stderr).toContain(
      `INFO: Create directory "${tablespaceDestination}" and symbolic link`,
    );
    expect(full.stderr).toContain('INFO: Files are synced');
    const fullBytes = transferredDataBytes(full.stderr);
    expect(fullBytes).toBeGreaterThan(30 * 1024 * 1024);
    expect(existsSync(join(destination, 'backup_label'))).toBe(true);
    expect(
      readdirSync(join(destination, 'pg_wal')).some((name) => /^[0-9A-F]{24}$/.test(name)),
    ).toBe(true);
    const links = readdirSync(join(destination, 'pg_tblspc'));
    expect(links).toHaveLength(1);
    expect(readlinkSync(join(destination, 'pg_tblspc', links[0]!))).toBe(tablespaceDestination);

    // Until the copy has been started once (backup_label consumed), it cannot be caught up again.
    const early = await runStrata([
      'catchup',
      '-b',
      'DELTA',
      '--source-pgdata',
      source.dataDir,
      '--destination-pgdata',
      destination,
      ...connection(),
    ]);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain('ERROR: Destination directory contains "backup_label" file');

    configureStandby(destination, source.port);
    let copy = await startRestoredCluster(major, destination);
    try {
      expect(await fingerprintCluster(copy)).toEqual(beforeFull);
      const running = await runStrata([
        'catchup',
        '-b',
        'DELTA',
        '--source-pgdata',
        source.dataDir,
        '--destination-pgdata',
        destination,
        ...connection(),
      ]);
      expect(running.code).toBe(1);
      expect(running.stderr).toMatch(
        new RegExp(
          `ERROR: Postmaster with pid \\d+ is running in destination directory "${destination}"`,
        ),
      );
    } finally {
      await copy.stop();
      await copy.destroy();
    }

    await source.query('shop', 'UPDATE accounts SET balance = balance + 1 WHERE id % 50 = 0');
    await source.query(
      'shop',
      "INSERT INTO accounts SELECT g, 'late-' || g, 1, DATE '2024-01-01' FROM generate_series(40001, 41000) g",
    );
    await source.query('crm', 'DROP TABLE documents');
    await source.query('postgres', 'CREATE TABLE added (id int PRIMARY KEY)');
    await source.query('postgres', 'INSERT INTO added SELECT generate_series(1, 100)');
    await source.query('shop', 'DELETE FROM archived WHERE id > 4000');
    const droppedPath = (
      await source.query<{ path: string }>(
        'crm',
        "SELECT pg_relation_filepath('accounts_owner') AS path",
      )
    )[0]!.path;
    await source.query('crm', 'DROP INDEX accounts_owner');
    const afterChanges = await fingerprintCluster(source);
    expect(afterChanges).not.toEqual(beforeFull);

    const ptrack = await runStrata([
      'catchup',
      '-b',
      'PTRACK',
      '--source-pgdata',
      source.dataDir,
      '--destination-pgdata',
      destination,
      ...connection(),
    ]);
    expect(ptrack.code).toBe(1);
    expect(ptrack.stderr).toContain('ERROR: This PostgreSQL instance does not support ptrack');

    const before = listingWithMtimes(destination);
    const dry = await strata([
      'catchup',
      '-b',
      'DELTA',
      '--dry-run',
      '--source-pgdata',
      source.dataDir,
      '--destination-pgdata',
      destination,
      '-T',
      `${tablespaceSource}=${tablespaceDestination}`,
      ...connection(),
    ]);
    expect(dry.stderr).toContain('INFO: WAL streaming skipping with --dry-run option');
    expect(dry.stderr).toMatch(/INFO: Catchup incremental ratio \(less is better\): \d+%/);
    expect(listingWithMtimes(destination)).toEqual(before);
    expect(existsSync(join(destination, droppedPath))).toBe(true);

    const delta = await strata([
      'catchup',
      '-b',
      'DELTA',
      '-j',
      '2',
      '--source-pgdata',
      source.dataDir,
      '--destination-pgdata',
      destination,
      '-T',
      `${tablespaceSource}=${tablespaceDestination}`,
      ...connection(),
    ]);
    expect(delta.stderr).toMatch(/INFO: syncLSN = [0-9A-F]+\/[0-9A-F]+/);
    expect(delta.stderr).toContain('INFO: Removing redundant files in destination directory');
    const deltaBytes = transferredDataBytes(delta.stderr);
    const ratio = Number(
      /INFO: Catchup incremental ratio \(less is better\): (\d+)%/.exec(delta.stderr)![1],
    );
    expect(deltaBytes).toBeLessThan(fullBytes / 3);
    expect(ratio).toBeLessThan(35);
    expect(existsSync(join(destination, droppedPath))).toBe(false);
    expect(existsSync(join(destination, 'global', 'pg_control.pbk.bak'))).toBe(false);

    configureStandby(destination, source.port);
    copy = await startRestoredCluster(major, destination);
    try {
      expect(await fingerprintCluster(copy)).toEqual(afterChanges);

      // The running copy is a standby: a catchup from it fixes minRecoveryPoint in pg_control.
      const third = join(scratch.path, 'from-standby');
      const fromStandby = await strata([
        'catchup',
        '-b',
        'FULL',
        '--source-pgdata',
        destination,
        '--destination-pgdata',
        third,
        '-T',
        `${tablespaceDestination}=${join(scratch.path, 'tbs-third')}`,
        ...copy.connectionArgs(),
      ]);
      expect(fromStandby.stderr).toContain('INFO: Running catchup from standby');
      const stopLsn = /INFO: stop_lsn: ([0-9A-F]+\/[0-9A-F]+)/.exec(fromStandby.stderr)![1]!;
      const control = parseControlFile(readFileSync(join(third, 'global', 'pg_control')));
      expect(formatLsn(control.minRecoveryPoint)).toBe(stopLsn);
      await copy.stop();
      const standalone = await startRestoredCluster(major, third);
      try {
        expect(await fingerprintCluster(standalone)).toEqual(afterChanges);
      } finally {
        await standalone.destroy();
      }
    } finally {
      await copy.stop();
      await copy.destroy();
    }
  });
});
