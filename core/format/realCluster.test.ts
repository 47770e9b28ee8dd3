/**
 * The byte formats against live servers of every installed PostgreSQL major: what the server says
 * about its own pg_control (pg_control_system() and friends read the same file), every data page
 * it wrote, and whether it accepts a pg_control rewritten by withMinRecoveryPoint.
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestCluster } from '../testing/cluster.js';
import { installedMajors } from '../testing/pgBinaries.js';
import { parseLsn } from './lsn.js';
import { BLCKSZ, RELSEG_SIZE, checkDataPage } from './page.js';
import { controlFileCrcValid, parseControlFile, withMinRecoveryPoint } from './pgControl.js';
import { pglzCompress, pglzDecompress } from './pglz.js';
import { walSegmentNameForLsn } from './walNames.js';

interface ControlFunctions {
  pg_control_version: number;
  catalog_version_no: number;
  system_identifier: string;
  checkpoint_lsn: string;
  redo_lsn: string;
  redo_wal_file: string;
  timeline_id: number;
  prev_timeline_id: number;
  full_page_writes: boolean;
  next_xid: string;
  next_oid: number;
  min_recovery_end_lsn: string;
  min_recovery_end_timeline: number;
  end_of_backup_record_required: boolean;
  database_block_size: number;
  blocks_per_segment: number;
  wal_block_size: number;
  bytes_per_wal_segment: number;
  data_page_checksum_version: number;
}

/** Main-fork relation files (`<relfilenode>` or `<relfilenode>.<segno>`) under base/ and global/. */
function relationFiles(dataDir: string): Array<{ path: string; segno: number }> {
  const files: Array<{ path: string; segno: number }> = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const match = /^\d+(?:\.(\d+))?$/.exec(name);
      if (match) files.push({ path, segno: Number(match[1] ?? 0) });
    }
  };
  walk(join(dataDir, 'base'));
  walk(join(dataDir, 'global'));
  return files;
}

const majors = installedMajors();

describe.each(majors)('PostgreSQL %i', (major) => {
  it('writes pg_control, WAL names and data pages the way core/format reads them', async () => {
    const walSegmentSizeBytes = major === 15 ? 1024 * 1024 : 16 * 1024 * 1024;
    const cluster = await TestCluster.create({
      major,
      initdbArgs: major === 15 ? ['--wal-segsize=1'] : [],
    });
    try {
      await cluster.start();
      await cluster.query(
        'postgres',
        `CREATE TABLE orders (id int PRIMARY KEY, note text);
         INSERT INTO orders SELECT g, 'note ' || g FROM generate_series(1, 20000) g;
         CHECKPOINT;`,
      );
      const [server] = await cluster.query<ControlFunctions>(
        'postgres',
        `SELECT * FROM pg_control_system(), pg_control_checkpoint(), pg_control_recovery(), pg_control_init()`,
      );
      const [orders] = await cluster.query<{ path: string }>(
        'postgres',
        `SELECT pg_relation_filepath('orders') AS path`,
      );
      const controlPath = join(cluster.dataDir, 'global', 'pg_control');
      const control = parseControlFile(readFileSync(controlPath));

      expect(control.major).toBe(major);
      expect(control.pgControlVersion).toBe(Number(server!.pg_control_version));
      expect(control.catalogVersionNo).toBe(Number(server!.catalog_version_no));
      expect(control.systemIdentifier).toBe(BigInt(server!.system_identifier));
      expect(control.state).toBe(6);
      expect(control.checkPoint).toBe(parseLsn(server!.checkpoint_lsn));
      expect(control.checkPointCopy.redo).toBe(parseLsn(server!.redo_lsn));
      expect(control.checkPointCopy.thisTimeLineId).toBe(server!.timeline_id);
      expect(control.checkPointCopy.prevTimeLineId).toBe(server!.prev_timeline_id);
      expect(control.checkPointCopy.fullPageWrites).toBe(server!.full_page_writes);
      const [epoch, xid] = server!.next_xid.split(':').map(BigInt);
      expect(control.checkPointCopy.nextXid).toBe((epoch! << 32n) | xid!);
      expect(control.checkPointCopy.nextOid).toBe(Number(server!.next_oid));
      expect(control.minRecoveryPoint).toBe(parseLsn(server!.min_recovery_end_lsn));
      expect(control.minRecoveryPointTli).toBe(server!.min_recovery_end_timeline);
      expect(control.backupEndRequired).toBe(server!.end_of_backup_record_required);
      expect(control.walLevel).toBe(1);
      expect(control.maxConnections).toBe(40);
      expect(control.blcksz).toBe(server!.database_block_size);
      expect(control.relsegSize).toBe(server!.blocks_per_segment);
      expect(control.xlogBlcksz).toBe(server!.wal_block_size);
      expect(control.xlogSegSize).toBe(server!.bytes_per_wal_segment);
      expect(control.xlogSegSize).toBe(walSegmentSizeBytes);
      expect(control.dataChecksumVersion).toBe(server!.data_page_checksum_version);
      expect(
        walSegmentNameForLsn(
          control.checkPointCopy.thisTimeLineId,
          control.checkPointCopy.redo,
          control.xlogSegSize,
        ),
      ).toBe(server!.redo_wal_file);

      await cluster.stop();
      expect(parseControlFile(readFileSync(controlPath)).state).toBe(1);

      let pages = 0;
      for (const file of relationFiles(cluster.dataDir)) {
        const content = readFileSync(file.path);
        expect(content.length % BLCKSZ, file.path).toBe(0);
        for (let block = 0; block < content.length / BLCKSZ; block++) {
          const page = content.subarray(block * BLCKSZ, (block + 1) * BLCKSZ);
          const result = checkDataPage(page, file.segno * RELSEG_SIZE + block, true);
          expect(result, `${file.path} block ${block}`).toMatchObject({ ok: true });
          pages++;
        }
      }
      expect(pages).toBeGreaterThan(500);

      const ordersFile = readFileSync(join(cluster.dataDir, orders!.path));
      expect(ordersFile.length / BLCKSZ).toBeGreaterThan(50);
      for (let block = 0; block < ordersFile.length / BLCKSZ; block++) {
        const page = ordersFile.subarray(block * BLCKSZ, (block + 1) * BLCKSZ);
        const compressed = pglzCompress(page);
        expect(compressed, `orders block ${block}`).not.toBeNull();
        expect(pglzDecompress(compressed!, BLCKSZ).equals(page), `orders block ${block}`).toBe(
          true,
        );
      }

      const stopped = parseControlFile(readFileSync(controlPath));
      const rewritten = withMinRecoveryPoint(readFileSync(controlPath), stopped.checkPoint, 1);
      expect(controlFileCrcValid(rewritten)).toBe(true);
      writeFileSync(controlPath, rewritten);
      await cluster.start();
      const [again] = await cluster.query<{ system_identifier: string }>(
        'postgres',
        'SELECT system_identifier FROM pg_control_system()',
      );
      expect(BigInt(again!.system_identifier)).toBe(control.systemIdentifier);
    } finally {
      await cluster.destroy();
    }
  });
});
