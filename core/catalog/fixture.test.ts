import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../format/crc32c.js';
import { parseLsn } from '../format/lsn.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import { backupIdToTime } from './backupId.js';
import { formatBackupControl, parseBackupControl } from './backupControl.js';
import { BackupCatalog } from './catalog.js';
import type { CatalogBackup } from './catalog.js';
import { formatContentList, parseContentList } from './contentList.js';
import { formatDatabaseMap, parseDatabaseMap } from './databaseMap.js';
import { formatInstanceConfig, parseInstanceConfigText } from './instanceConfig.js';
import {
  encodePageHeaderSlice,
  readPageHeaderSlice,
  verifyPageHeaderChain,
} from './pageHeaderMap.js';
import type { FileEntry } from './types.js';
import { probackupFixtureDir } from '../testing/pgBinaries.js';

/**
 * The catalog made by real pg_probackup 2.5.16 on PostgreSQL 15 (its README describes how). Kept
 * outside the repository; STRATA_PROBACKUP_FIXTURE points elsewhere if it moves.
 */
const fixtureRoot = probackupFixtureDir;
const catalogPath = join(fixtureRoot, 'catalog');
const instanceDir = join(catalogPath, 'backups', 'demo');
const backupIds = ['TP11R6', 'TP11RH', 'TP11RT'] as const;

const storage = new LocalStorage();
const catalog = new BackupCatalog(storage, catalogPath);

describe('pg_probackup 2.5.16 fixture catalog', () => {
  let backups: CatalogBackup[];
  const lists = new Map<string, FileEntry[]>();

  beforeAll(async () => {
    if (!existsSync(catalogPath))
      throw new Error(`The pg_probackup fixture is missing at ${catalogPath}`);
    backups = await catalog.listBackups('demo');
    for (const backup of backups) lists.set(backup.id, await catalog.readContentList(backup));
  });

  it('lists the one instance and its three backups newest first', async () => {
    expect(await catalog.listInstances()).toEqual(['demo']);
    expect(backups.map((backup) => backup.id)).toEqual(['TP11RT', 'TP11RH', 'TP11R6']);
    expect(backups.map((backup) => backup.dir)).toEqual(
      ['TP11RT', 'TP11RH', 'TP11R6'].map((id) => join(instanceDir, id)),
    );
    for (const backup of backups) expect(backup.problems).toEqual([]);
  });

  it('reads every backup.control field of the FULL backup', () => {
    const full = backups.find((backup) => backup.id === 'TP11R6')!;
    expect(full).toMatchObject({
      backupMode: 'FULL',
      stream: true,
      compressAlg: 'zlib',
      compressLevel: 1,
      fromReplica: false,
      blockSize: 8192,
      xlogBlockSize: 8192,
      checksumVersion: 1,
      programVersion: '2.5.16',
      serverVersion: '15',
      timelineId: 1,
      startLsn: parseLsn('0/1300028'),
      stopLsn: parseLsn('0/1300168'),
      startTime: Date.UTC(2026, 10, 24, 22, 13, 54) / 1000,
      endTime: Date.UTC(2026, 10, 24, 22, 14, 4) / 1000,
      recoveryXid: 728n,
      recoveryTime: Date.UTC(2026, 10, 24, 22, 13, 56) / 1000,
      mergeTime: 0,
      expireTime: 0,
      dataBytes: 13644328,
      walBytes: 1048576,
      uncompressedBytes: 39885762,
      pgdataBytes: 39885415,
      status: 'OK',
      parentBackupId: undefined,
      note: 'fixture full',
      contentCrc: 2635224308,
    });
    expect(full.startTime).toBe(backupIdToTime('TP11R6'));
    expect(full.primaryConninfo).toMatch(
      /^user=postgres channel_binding=prefer host=127\.0\.0\.1 port=29555 /,
    );
  });

  it('links the DELTA and PAGE backups to their parents', () => {
    const delta = backups.find((backup) => backup.id === 'TP11RH')!;
    const page = backups.find((backup) => backup.id === 'TP11RT')!;
    expect(delta).toMatchObject({
      backupMode: 'DELTA',
      compressAlg: 'pglz',
      parentBackupId: 'TP11R6',
      startLsn: parseLsn('0/1600028'),
      recoveryXid: 729n,
      contentCrc: 2657596431,
      note: undefined,
    });
    expect(page).toMatchObject({
      backupMode: 'PAGE',
      compressAlg: 'none',
      parentBackupId: 'TP11RH',
      startLsn: parseLsn('0/1800028'),
      stopLsn: parseLsn('0/19000B8'),
      walBytes: 2097152,
      contentCrc: 2620150613,
    });
    const resolved = catalog.resolveBackupChain(backups, 'TP11RT');
    expect(resolved.chain.map((backup) => backup.id)).toEqual(['TP11R6', 'TP11RH', 'TP11RT']);
    expect(resolved.broken).toBe(false);
    expect(resolved.invalid).toBeUndefined();
  });

  it.each(backupIds)('writes backup.control of %s back byte for byte', (id) => {
    const path = join(instanceDir, id, 'backup.control');
    const text = readFileSync(path, 'utf8');
    const warnings: string[] = [];
    expect(formatBackupControl(parseBackupControl(text, path, warnings))).toBe(text);
    expect(warnings).toEqual([]);
  });

  it('reads the file lists with their content-crc verified', () => {
    expect(lists.get('TP11R6')).toHaveLength(1594);
    expect(lists.get('TP11RH')).toHaveLength(1595);
    expect(lists.get('TP11RT')).toHaveLength(1596);
    const full = lists.get('TP11R6')!;
    expect(full.find((entry) => entry.path === 'base/16384/549')).toEqual({
      path: 'base/16384/549',
      size: 116,
      mode: 0o100600,
      isDatafile: true,
      isCfs: false,
      crc: 275681937,
      compressAlg: 'zlib',
      externalDirNum: 0,
      dbOid: 16384,
      fullSize: 8192,
      segno: 0,
      linked: undefined,
      nBlocks: 1,
      nHeaders: 1,
      hdrCrc: 1324609673,
      hdrOff: 0n,
      hdrSize: 22,
    });
    expect(full.find((entry) => entry.path === 'pg_wal')).toMatchObject({
      size: 0,
      mode: 0o40700,
      isDatafile: false,
    });
    const unchanged = lists.get('TP11RH')!.find((entry) => entry.path === 'base/16385/PG_VERSION')!;
    expect(unchanged).toMatchObject({ size: -1, fullSize: 3, crc: 575108234, dbOid: 16385 });
  });

  it.each(backupIds)('writes backup_content.control of %s back byte for byte', (id) => {
    const path = join(instanceDir, id, 'backup_content.control');
    const bytes = readFileSync(path);
    const rewritten = formatContentList(parseContentList(bytes.toString('utf8'), path));
    expect(rewritten.equals(bytes)).toBe(true);
    expect(crc32c(rewritten)).toBe(backups.find((backup) => backup.id === id)!.contentCrc);
  });

  it.each(backupIds)('stores the CRC32C of every regular file of %s in its list', (id) => {
    let checked = 0;
    for (const entry of lists.get(id)!) {
      if (
        (entry.mode & 0o170000) !== 0o100000 ||
        entry.size <= 0 ||
        entry.path === 'global/pg_control'
      )
        continue;
      const bytes = readFileSync(join(instanceDir, id, 'database', entry.path));
      expect(bytes.length, entry.path).toBe(entry.size);
      expect(crc32c(bytes), entry.path).toBe(entry.crc);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });

  it.each(backupIds)(
    'decodes every page header slice of %s and matches it to the data files',
    async (id) => {
      const mapPath = join(instanceDir, id, 'page_header_map');
      const mapBytes = readFileSync(mapPath);
      const backup = backups.find((candidate) => candidate.id === id)!;
      let slices = 0;
      for (const entry of lists.get(id)!) {
        if (!entry.isDatafile || entry.size <= 0) continue;
        expect(entry.nHeaders, entry.path).toBeGreaterThan(0);
        const headers = await readPageHeaderSlice(storage, mapPath, entry);
        expect(headers).toHaveLength(entry.nHeaders! + 1);
        const dataPath = join(instanceDir, id, 'database', entry.path);
        verifyPageHeaderChain(headers, statSync(dataPath).size, entry.path);

        const data = readFileSync(dataPath);
        for (let i = 0; i + 1 < headers.length; i++) {
          const header = headers[i]!;
          expect(header.block).toBeLessThan(entry.nBlocks!);
          expect(data.readUInt32LE(header.pos), entry.path).toBe(header.block);
          const payloadBytes = headers[i + 1]!.pos - header.pos - 8;
          expect(data.readInt32LE(header.pos + 4), entry.path).toBe(payloadBytes);
          if (backup.compressAlg === 'none') expect(payloadBytes).toBe(8192);
        }

        const original = inflateSync(
          mapBytes.subarray(Number(entry.hdrOff), Number(entry.hdrOff) + entry.hdrSize!),
        );
        const reencoded = encodePageHeaderSlice(headers);
        expect(reencoded.hdrCrc).toBe(entry.hdrCrc);
        expect(inflateSync(reencoded.bytes).equals(original)).toBe(true);
        slices++;
      }
      expect(slices).toBeGreaterThan(0);
    },
  );

  it('reads database_map and writes it back byte for byte', async () => {
    const full = backups.find((backup) => backup.id === 'TP11R6')!;
    const path = join(full.dir, 'database', 'database_map');
    const text = readFileSync(path, 'utf8');
    expect(await catalog.readDatabaseMap(full)).toEqual([
      { dbOid: 5, datname: 'postgres' },
      { dbOid: 16384, datname: 'sales' },
      { dbOid: 16385, datname: 'hr' },
    ]);
    expect(formatDatabaseMap(parseDatabaseMap(text, path))).toBe(text);
    expect(crc32c(Buffer.from(text))).toBe(
      lists.get('TP11R6')!.find((entry) => entry.path === 'database_map')!.crc,
    );
  });

  it('reads pg_probackup.conf and writes it back byte for byte', async () => {
    const path = join(instanceDir, 'pg_probackup.conf');
    const text = readFileSync(path, 'utf8');
    const config = await catalog.readInstanceConfig('demo');
    expect(config).toEqual({
      pgdata: '/var/lib/postgresql/fixture/pgdata',
      systemIdentifier: 7711864751650477886n,
      xlogSegSize: 1048576,
    });
    expect(formatInstanceConfig(parseInstanceConfigText(text, path))).toBe(text);
  });
});
