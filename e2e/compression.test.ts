import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseContentList } from '../core/catalog/contentList.js';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { fingerprintCluster, generateData, type ClusterFingerprint } from '../core/testing/data.js';
import { completedBackupId, runStrata, strata } from './strataCli.js';

const major = 17;
const algorithms = ['none', 'zlib', 'pglz', 'lz4', 'zstd'] as const;
type Algorithm = (typeof algorithms)[number];

interface ShownBackup {
  id: string;
  status: string;
  'compress-alg': string;
  'compress-level': number;
  'data-bytes': number;
}

describe('FULL backups with every compression algorithm (PostgreSQL 17)', () => {
  let cluster: TestCluster;
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let fingerprint: ClusterFingerprint;
  const backupIds = new Map<Algorithm, string>();

  function connection(): string[] {
    return cluster.connectionArgs();
  }

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-compression-');
    catalog = join(scratch.path, 'catalog');
    cluster = await TestCluster.create({ major });
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', 'main', '-D', cluster.dataDir]);
    await cluster.start();
    await generateData(cluster, { databases: ['sales'], rowsPerTable: 20000 });
    fingerprint = await fingerprintCluster(cluster);
  });

  afterAll(async () => {
    await cluster?.destroy();
    scratch?.remove();
  });

  it.each(algorithms)('backs up with %s and restores to equal data', async (algorithm) => {
    // pg_probackup refuses pglz with more than one thread; Strata keeps that rule.
    const threads = algorithm === 'pglz' ? '1' : '2';
    const backup = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      'main',
      '-b',
      'FULL',
      '--stream',
      '-j',
      threads,
      `--compress-algorithm=${algorithm}`,
      ...connection(),
    ]);
    expect(backup.stderr).toContain(`compress-algorithm: ${algorithm}, compress-level: 1`);
    const backupId = completedBackupId(backup.stderr);
    backupIds.set(algorithm, backupId);

    const listPath = join(catalog, 'backups', 'main', backupId, 'backup_content.control');
    const list = parseContentList(readFileSync(listPath, 'utf8'), listPath);
    const dataFiles = list.filter((entry) => entry.isDatafile && entry.size > 0);
    expect(dataFiles.length).toBeGreaterThan(100);
    for (const entry of dataFiles) expect(entry.compressAlg).toBe(algorithm);
    if (algorithm !== 'none') {
      // Catalog pages compress; a file stored with at least one compressed page is smaller than its pages.
      expect(
        dataFiles.some((entry) => entry.fullSize !== undefined && entry.size < entry.fullSize),
      ).toBe(true);
    }

    const target = join(scratch.path, `restore-${algorithm}`);
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
    const restored = await startRestoredCluster(major, target);
    try {
      expect(await fingerprintCluster(restored)).toEqual(fingerprint);
    } finally {
      await restored.destroy();
    }
  });

  it('shows each compress-alg and sizes that shrink with compression', async () => {
    const shown = JSON.parse(
      (await strata(['show', '-B', catalog, '--instance', 'main', '--format=json'])).stdout,
    ) as Array<{ backups: ShownBackup[] }>;
    const backups = shown[0]!.backups;
    const byAlgorithm = new Map<string, ShownBackup>();
    for (const [algorithm, id] of backupIds) {
      const backup = backups.find((candidate) => candidate.id === id)!;
      expect(backup.status).toBe('OK');
      expect(backup['compress-alg']).toBe(algorithm);
      expect(backup['compress-level']).toBe(1);
      byAlgorithm.set(algorithm, backup);
    }
    expect(byAlgorithm.size).toBe(algorithms.length);
    const none = byAlgorithm.get('none')!['data-bytes'];
    for (const algorithm of ['zlib', 'pglz', 'lz4', 'zstd']) {
      expect(byAlgorithm.get(algorithm)!['data-bytes'], algorithm).toBeLessThan(none * 0.8);
    }
    // zstd and zlib find more redundancy than the fast lz4.
    expect(byAlgorithm.get('zstd')!['data-bytes']).toBeLessThan(
      byAlgorithm.get('lz4')!['data-bytes'],
    );
    expect(byAlgorithm.get('zlib')!['data-bytes']).toBeLessThan(
      byAlgorithm.get('lz4')!['data-bytes'],
    );
  });

  it('records the Strata-only algorithm where pg_probackup reads it, so pg_probackup refuses it', () => {
    const control = readFileSync(
      join(catalog, 'backups', 'main', backupIds.get('zstd')!, 'backup.control'),
      'utf8',
    );
    // pg_probackup 2.5 parses compress-alg with parse_compress_alg(), which stops on any other name.
    expect(control).toMatch(/^compress-alg = zstd$/m);
  });

  it('checks --compress-level against the algorithm', async () => {
    const tooHigh = await runStrata([
      'backup',
      '-B',
      catalog,
      '--instance',
      'main',
      '-b',
      'FULL',
      '--stream',
      '--compress-algorithm=zstd',
      '--compress-level=20',
      ...connection(),
    ]);
    expect(tooHigh.code).toBe(1);
    expect(tooHigh.stderr).toContain(
      'ERROR: --compress-level value must be in the range from 1 to 19 for zstd',
    );
    const zlibTooHigh = await runStrata([
      'backup',
      '-B',
      catalog,
      '--instance',
      'main',
      '-b',
      'FULL',
      '--stream',
      '--compress-algorithm=zlib',
      '--compress-level=12',
      ...connection(),
    ]);
    expect(zlibTooHigh.stderr).toContain(
      'ERROR: --compress-level value must be in the range from 0 to 9',
    );
  });
});
