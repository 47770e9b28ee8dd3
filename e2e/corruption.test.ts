import { existsSync, openSync, readFileSync, readSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateData } from '../core/testing/data.js';
import { createCatalogCluster, type CatalogCluster } from './catalogCluster.js';
import { completedBackupId, runStrata, spawnStrata, strata } from './strataCli.js';

const major = 15;

describe('damaged and interrupted backups', () => {
  let source: CatalogCluster;
  let catalog: string;
  let connection: string[];

  beforeAll(async () => {
    source = await createCatalogCluster({ major, instance: 'db' });
    ({ catalog, connection } = source);
    await generateData(source.cluster, { databases: ['shop'], rowsPerTable: 3000 });
  });

  afterAll(async () => {
    await source?.destroy();
  });

  it('reports a flipped byte in a backed-up page as CORRUPT, naming file and block, and refuses to restore it', async () => {
    const backupId = completedBackupId(
      (
        await strata([
          'backup',
          '-B',
          catalog,
          '--instance',
          'db',
          '-b',
          'FULL',
          '--stream',
          ...connection,
        ])
      ).stderr,
    );
    const relationPath = (
      await source.cluster.query<{ path: string }>(
        'shop',
        "SELECT pg_relation_filepath('accounts') AS path",
      )
    )[0]!.path;
    const stored = join(catalog, 'backups', 'db', backupId, 'database', relationPath);
    expect(existsSync(stored)).toBe(true);
    // Uncompressed backup: the first record is an 8-byte header and the raw page of block 0;
    // a byte in the middle of the page's tuple area is flipped.
    const offset = 8 + 6000;
    const fd = openSync(stored, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, offset);
    byte[0] = byte[0]! ^ 0xff;
    writeSync(fd, byte, 0, 1, offset);
    closeSync(fd);

    const validate = await runStrata([
      'validate',
      '-B',
      catalog,
      '--instance',
      'db',
      '-i',
      backupId,
    ]);
    expect(validate.code).toBe(1);
    expect(validate.stderr).toMatch(new RegExp(`${relationPath.replace(/\//g, '\\/')}.*block 0`));
    expect(validate.stderr).toContain(`Backup ${backupId} is corrupt.`);

    const shown = JSON.parse(
      (await strata(['show', '-B', catalog, '--instance', 'db', '--format=json'])).stdout,
    );
    expect(shown[0].backups.find((b: { id: string }) => b.id === backupId).status).toBe('CORRUPT');

    const restore = await runStrata([
      'restore',
      '-B',
      catalog,
      '--instance',
      'db',
      '-i',
      backupId,
      '-D',
      join(source.dir, 'never'),
    ]);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toContain(`Backup ${backupId} is corrupt.`);
    expect(existsSync(join(source.dir, 'never', 'global', 'pg_control'))).toBe(false);
  });

  it('marks a backup killed half-way as ERROR, never OK, and the next backup succeeds', async () => {
    // The cluster does not archive, so an archive-mode backup waits for its start segment until killed.
    const child = spawnStrata([
      'backup',
      '-B',
      catalog,
      '--instance',
      'db',
      '-b',
      'FULL',
      '--archive-timeout=600',
      ...connection,
    ]);
    let stderr = '';
    await new Promise<void>((resolveWait, reject) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('to be archived')) resolveWait();
      });
      child.on('exit', () => reject(new Error(`backup exited before it was killed:\n${stderr}`)));
    });
    const killedId = /backup ID: (\w+)/.exec(stderr)![1]!;
    child.kill('SIGKILL');
    await new Promise((resolveExit) => child.once('exit', resolveExit));
    expect(
      readFileSync(join(catalog, 'backups', 'db', killedId, 'backup.control'), 'utf8'),
    ).toContain('status = RUNNING');

    const shown = JSON.parse(
      (await strata(['show', '-B', catalog, '--instance', 'db', '--format=json'])).stdout,
    );
    expect(shown[0].backups.find((b: { id: string }) => b.id === killedId).status).toBe('ERROR');
    // The server must not be left in backup mode by the killed process: a new backup starts.
    const next = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      'db',
      '-b',
      'FULL',
      '--stream',
      ...connection,
    ]);
    expect(next.stderr).toContain('completed');
  });
});
