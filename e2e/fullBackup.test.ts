import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { formatBackupControl, parseBackupControl } from '../core/catalog/backupControl.js';
import { formatContentList, parseContentList } from '../core/catalog/contentList.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRestoredCluster, type TestCluster } from '../core/testing/cluster.js';
import { fingerprintCluster, generateData, type ClusterFingerprint } from '../core/testing/data.js';
import { createCatalogCluster, type CatalogCluster } from './catalogCluster.js';
import { completedBackupId, strata } from './strataCli.js';

const majors = [13, 15, 17, 18];

describe.each(majors)('FULL backup and restore on PostgreSQL %i', (major) => {
  let source: CatalogCluster;
  let catalog: string;
  let fingerprint: ClusterFingerprint;
  const restored: TestCluster[] = [];

  beforeAll(async () => {
    source = await createCatalogCluster({ major, archive: true });
    catalog = source.catalog;
    await generateData(source.cluster, { databases: ['sales', 'hr'], rowsPerTable: 5000 });
    fingerprint = await fingerprintCluster(source.cluster);
  });

  afterAll(async () => {
    for (const server of restored) await server.destroy();
    await source?.destroy();
  });

  async function backupRestoreAndCompare(extraArgs: string[], compress: string[]): Promise<string> {
    const backup = await source.backup(['-b', 'FULL', '-j', '2', ...extraArgs, ...compress]);
    const backupId = completedBackupId(backup.stderr);
    const target = join(source.dir, `restore-${backupId}-${restored.length}`);
    await strata([
      'restore',
      '-B',
      catalog,
      '--instance',
      'main',
      '-i',
      backupId,
      '-D',
      target,
      '-j',
      '2',
    ]);
    const server = await startRestoredCluster(major, target);
    restored.push(server);
    // No data changed after the fingerprint, so replaying the archive to its end (ARCHIVE) or
    // only to the backup's stop LSN (STREAM) must both give exactly the fingerprinted data.
    expect(await fingerprintCluster(server)).toEqual(fingerprint);
    await server.stop();
    return backupId;
  }

  it('restores a --stream backup to equal data', async () => {
    await backupRestoreAndCompare(
      ['--stream'],
      ['--compress-algorithm=zlib', '--compress-level=1'],
    );
  });

  it('restores an archive-mode backup to equal data', async () => {
    await backupRestoreAndCompare([], []);
  });

  it('lists both backups as OK in show --format=json with the documented fields', async () => {
    const shown = JSON.parse(
      (await strata(['show', '-B', catalog, '--instance', 'main', '--format=json'])).stdout,
    );
    expect(shown).toHaveLength(1);
    expect(shown[0].instance).toBe('main');
    const backups = shown[0].backups;
    expect(backups).toHaveLength(2);
    for (const backup of backups) {
      expect(backup.status).toBe('OK');
      expect(backup['backup-mode']).toBe('FULL');
      expect(backup['server-version']).toBe(String(major));
      expect(backup['current-tli']).toBe(1);
      expect(backup['parent-tli']).toBe(0);
      expect(backup['block-size']).toBe(8192);
      expect(backup['checksum-version']).toBe(1);
      expect(backup['from-replica']).toBe('false');
      expect(backup['start-lsn']).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(typeof backup['recovery-xid']).toBe('number');
      expect(backup['data-bytes']).toBeGreaterThan(0);
      expect(backup['wal-bytes']).toBeGreaterThan(0);
      expect(backup['content-crc']).toBeGreaterThan(0);
    }
    expect(backups.map((backup: { wal: string }) => backup.wal)).toEqual(['ARCHIVE', 'STREAM']);
    expect(backups[1]['compress-alg']).toBe('zlib');
  });

  it('writes a catalog that survives a round trip through its parsers and passes validate', async () => {
    const instanceDir = join(catalog, 'backups', 'main');
    const backupIds = readdirSync(instanceDir, { withFileTypes: true }).filter((e) =>
      e.isDirectory(),
    );
    expect(backupIds).toHaveLength(2);
    for (const { name } of backupIds) {
      const controlPath = join(instanceDir, name, 'backup.control');
      const control = readFileSync(controlPath, 'utf8');
      expect(formatBackupControl(parseBackupControl(control, controlPath))).toBe(control);
      const listPath = join(instanceDir, name, 'backup_content.control');
      const list = readFileSync(listPath);
      expect(
        formatContentList(parseContentList(list.toString('utf8'), listPath)).equals(list),
      ).toBe(true);
    }
    const validate = await strata(['validate', '-B', catalog, '--instance', 'main']);
    expect(validate.stderr).toContain('All backups are valid');
  });
});
