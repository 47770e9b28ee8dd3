import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { fingerprintCluster, generateData, type ClusterFingerprint } from '../core/testing/data.js';
import { completedBackupId, runStrata, strata } from './strataCli.js';

const MAJOR = 17;

/** Every file under `root` with its bytes and permission bits, by relative path. */
function snapshot(root: string): Record<string, { mode: number; bytes: string }> {
  const files: Record<string, { mode: number; bytes: string }> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else
        files[relative(root, path)] = {
          mode: statSync(path).mode & 0o7777,
          bytes: readFileSync(path).toString('base64'),
        };
    }
  };
  walk(root);
  return files;
}

describe(`restore to other locations: -T, --external-mapping, --waldir (PostgreSQL ${MAJOR})`, () => {
  let cluster: TestCluster;
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let backupId: string;
  let fingerprint: ClusterFingerprint;
  let tablespaces: string[];
  /** Given to -E in reverse order: directory 1 is the one that sorts first. */
  let externals: string[];

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-locations-');
    catalog = join(scratch.path, 'catalog');
    tablespaces = [join(scratch.path, 'ts-one'), join(scratch.path, 'ts-two')];
    externals = [join(scratch.path, 'ext-a'), join(scratch.path, 'ext-z')];
    for (const dir of [...tablespaces, ...externals]) mkdirSync(dir);
    mkdirSync(join(externals[0]!, 'conf.d', 'deep'), { recursive: true });
    writeFileSync(join(externals[0]!, 'conf.d', 'main.conf'), 'shared_buffers = 64MB\n');
    writeFileSync(join(externals[0]!, 'conf.d', 'deep', 'blob.bin'), randomBytes(300_000));
    chmodSync(join(externals[0]!, 'conf.d', 'main.conf'), 0o640);
    writeFileSync(join(externals[1]!, 'notes.txt'), 'external directory two\n');
    writeFileSync(join(externals[1]!, 'empty'), '');

    cluster = await TestCluster.create({ major: MAJOR });
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', 'loc', '-D', cluster.dataDir]);
    await cluster.start();
    await generateData(cluster, { databases: ['shop'], rowsPerTable: 5000 });
    await cluster.query('postgres', `CREATE TABLESPACE one LOCATION '${tablespaces[0]}'`);
    await cluster.query('postgres', `CREATE TABLESPACE two LOCATION '${tablespaces[1]}'`);
    await cluster.query('postgres', 'CREATE DATABASE spaced TABLESPACE two');
    await cluster.query('shop', 'CREATE TABLE far (id int PRIMARY KEY, v text) TABLESPACE one');
    await cluster.query(
      'shop',
      'INSERT INTO far SELECT g, md5(g::text) FROM generate_series(1, 8000) g',
    );
    await cluster.query(
      'spaced',
      'CREATE TABLE farther AS SELECT g AS id, repeat(md5(g::text), 3) AS v FROM generate_series(1, 3000) g',
    );
    fingerprint = await fingerprintCluster(cluster);
    const result = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      'loc',
      '-b',
      'FULL',
      '--stream',
      '-E',
      `${externals[1]}:${externals[0]}`,
      ...cluster.connectionArgs(),
    ]);
    backupId = completedBackupId(result.stderr);
  });

  afterAll(async () => {
    await cluster?.destroy();
    scratch?.remove();
  });

  it('restores tablespaces, external directories and pg_wal to new places and starts with equal data', async () => {
    const pgdata = join(scratch.path, 'restored');
    const newTablespaces = [join(scratch.path, 'new-ts-one'), join(scratch.path, 'new-ts-two')];
    const newExternals = [join(scratch.path, 'new-ext-a'), join(scratch.path, 'new-ext-z')];
    const waldir = join(scratch.path, 'new-wal');
    const restored = await strata([
      'restore',
      '-B',
      catalog,
      '--instance',
      'loc',
      '-i',
      backupId,
      '-D',
      pgdata,
      '-j',
      '3',
      '-T',
      `${tablespaces[0]}=${newTablespaces[0]}`,
      `--tablespace-mapping=${tablespaces[1]}=${newTablespaces[1]}`,
      '--external-mapping',
      `${externals[0]}=${newExternals[0]}`,
      '--external-mapping',
      `${externals[1]}=${newExternals[1]}`,
      '--waldir',
      waldir,
    ]);
    const links = readdirSync(join(pgdata, 'pg_tblspc')).map((oid) =>
      readlinkSync(join(pgdata, 'pg_tblspc', oid)),
    );
    expect(links.sort()).toEqual(newTablespaces);
    for (const [index, dir] of tablespaces.entries()) {
      expect(restored.stderr).toMatch(
        new RegExp(
          `INFO: Tablespace \\d+ will be remapped from "${dir}" to "${newTablespaces[index]}"`,
        ),
      );
    }
    expect(lstatSync(join(pgdata, 'pg_wal')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(pgdata, 'pg_wal'))).toBe(waldir);
    expect(readdirSync(waldir).some((name) => /^[0-9A-F]{24}$/.test(name))).toBe(true);
    for (const [index, dir] of externals.entries()) {
      expect(snapshot(newExternals[index]!)).toEqual(snapshot(dir));
    }

    const server = await startRestoredCluster(MAJOR, pgdata);
    try {
      expect(await fingerprintCluster(server)).toEqual(fingerprint);
      const locations = await server.query<{ spcname: string; location: string }>(
        'postgres',
        "select spcname, pg_tablespace_location(oid) as location from pg_tablespace where spcname in ('one', 'two') order by 1",
      );
      expect(locations.map((row) => row.location)).toEqual(newTablespaces);
    } finally {
      await server.destroy();
    }
  });

  it('refuses mappings and targets the backup cannot use, before writing anything', async () => {
    const pgdata = join(scratch.path, 'refused');
    const base = ['restore', '-B', catalog, '--instance', 'loc', '-i', backupId, '-D', pgdata];
    const occupied = join(scratch.path, 'occupied');
    mkdirSync(occupied);
    writeFileSync(join(occupied, 'file'), 'x');
    const elsewhere = [
      '-T',
      `${tablespaces[0]}=${join(scratch.path, 'x1')}`,
      '-T',
      `${tablespaces[1]}=${join(scratch.path, 'x2')}`,
    ];
    const cases: Array<[string[], string]> = [
      [
        ['-T', 'ts-one=/x'],
        'ERROR: Old directory is not an absolute path in tablespace mapping: ts-one',
      ],
      [
        ['-T', '/nowhere=/x'],
        `ERROR: --tablespace-mapping option's old directory doesn't have an entry in tablespace_map file: "/nowhere"`,
      ],
      [
        ['-T', `${tablespaces[0]}=${occupied}`],
        `ERROR: Restore tablespace destination is not empty: "${occupied}"`,
      ],
      [
        [
          '-T',
          `${tablespaces[0]}=${join(pgdata, 'inside')}`,
          '-T',
          `${tablespaces[1]}=${join(scratch.path, 'x2')}`,
        ],
        'overlaps the data directory',
      ],
      [
        [...elsewhere, '--external-mapping', `/nowhere=${join(scratch.path, 'e1')}`],
        `ERROR: --external-mapping option's old directory doesn't have an entry in list of external directories of current backup: "/nowhere"`,
      ],
      [
        [...elsewhere, '--external-mapping', `${externals[0]}=${occupied}`],
        `ERROR: External directory is not empty: "${occupied}"`,
      ],
      [[...elsewhere], `ERROR: External directory is not empty: "${externals[0]}"`],
      [
        [...elsewhere, '--skip-external-dirs', '--waldir', 'relative/wal'],
        'ERROR: WAL directory location must be an absolute path',
      ],
      [
        [...elsewhere, '--skip-external-dirs', '--waldir', occupied],
        `ERROR: WAL directory location is not empty: "${occupied}"`,
      ],
    ];
    for (const [extra, message] of cases) {
      const result = await runStrata([...base, ...extra]);
      expect(result.code, extra.join(' ')).toBe(1);
      expect(result.stderr).toContain(message);
    }
    expect(readdirSync(scratch.path)).not.toContain('refused');
  });
});
