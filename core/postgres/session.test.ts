import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStrataError } from '../errors.js';
import { formatLsn, parseLsn } from '../format/lsn.js';
import { createMemoryLogger } from '../log.js';
import { TestCluster } from '../testing/cluster.js';
import { installedMajors } from '../testing/pgBinaries.js';
import {
  abortBackup,
  createRestorePoint,
  startBackup,
  stopBackup,
  switchWal,
} from './backupSession.js';
import { connectPostgres, type ConnectionOptions, type PgSession } from './connection.js';
import { checkServerForBackup, readServerFacts, type ServerFacts } from './serverFacts.js';
import { lsnToSegno, walSegmentName } from '../format/walNames.js';

const majors = [13, 17].filter((major) => installedMajors().includes(major));
/** 17 runs with 1 MB segments (initdb --wal-segsize=1), 13 with the default 16 MB. */
const segmentSizeOf = (major: number) => (major === 17 ? 1024 * 1024 : 16 * 1024 * 1024);

function optionsOf(cluster: TestCluster, extra: ConnectionOptions = {}): ConnectionOptions {
  return {
    pghost: '127.0.0.1',
    pgport: cluster.port,
    pguser: 'postgres',
    pgdatabase: 'postgres',
    ...extra,
  };
}

/** ControlFileData starts with system_identifier, a uint64 in host (little-endian) order. */
function systemIdentifierFromPgControl(dataDir: string): bigint {
  return readFileSync(join(dataDir, 'global', 'pg_control')).readBigUInt64LE(0);
}

async function expectRejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe.each(majors)('PostgreSQL %i sessions', (major) => {
  let cluster: TestCluster;
  const logger = createMemoryLogger();
  let session: PgSession;

  beforeAll(async () => {
    cluster = await TestCluster.create({
      major,
      initdbArgs: major === 17 ? ['--wal-segsize=1'] : [],
    });
    await cluster.start();
    session = await connectPostgres(optionsOf(cluster), logger);
  });

  afterAll(async () => {
    await session?.close();
    await cluster?.destroy();
  });

  describe('connectPostgres', () => {
    it('connects with search_path emptied (CVE-2018-1058) and knows the server major', async () => {
      const rows = await session.query<{ search_path: string }>('SHOW search_path');
      expect(rows).toEqual([{ search_path: '' }]);
      expect(session.serverMajor).toBe(major);
      expect(session.database).toBe('postgres');
    });

    it('reports a failed query as pg_probackup does, with the server text and the SQL', async () => {
      const error = await expectRejection(session.query('SELECT * FROM no_such_table'));
      expect(isStrataError(error) && error.code).toBe('postgres');
      expect(error.message).toBe(
        'query failed: ERROR:  relation "no_such_table" does not exist\nquery was: SELECT * FROM no_such_table',
      );
    });

    it('reports a failed connection naming the database', async () => {
      const error = await expectRejection(
        connectPostgres(optionsOf(cluster, { pgdatabase: 'nodb' }), logger),
      );
      expect(error.message).toBe(
        'could not connect to database nodb: database "nodb" does not exist',
      );
      const refused = await expectRejection(
        connectPostgres(optionsOf(cluster, { pgport: 1 }), logger),
      );
      expect(refused.message).toMatch(
        /^could not connect to database postgres: .*ECONNREFUSED 127\.0\.0\.1:1$/,
      );
    });

    it('builds primary_conninfo from the effective parameters without the password', async () => {
      const saved = process.env['PGSSLMODE'];
      delete process.env['PGSSLMODE'];
      try {
        const withPassword = await connectPostgres(
          optionsOf(cluster, { password: 'not-needed' }),
          logger,
        );
        const conninfo = withPassword.primaryConninfo();
        await withPassword.close();
        const expected =
          major >= 14
            ? `user=postgres channel_binding=prefer host=127.0.0.1 port=${cluster.port} sslmode=prefer sslcompression=0 sslsni=1 ssl_min_protocol_version=TLSv1.2 gssencmode=prefer krbsrvname=postgres target_session_attrs=any`
            : `user=postgres channel_binding=prefer host=127.0.0.1 port=${cluster.port} sslmode=prefer sslcompression=0 ssl_min_protocol_version=TLSv1.2 gssencmode=prefer krbsrvname=postgres target_session_attrs=any`;
        expect(conninfo).toBe(expected);
      } finally {
        if (saved !== undefined) process.env['PGSSLMODE'] = saved;
      }
    });

    it('cancels the running statement and stays usable', async () => {
      const other = await connectPostgres(optionsOf(cluster), logger);
      const pid = other.backendPid;
      expect(pid).toBeGreaterThan(0);
      const sleeping = other.query('SELECT pg_catalog.pg_sleep(60)');
      const failure = expectRejection(sleeping);
      for (let attempt = 0; attempt < 100; attempt++) {
        const [state] = await session.query<{ active: boolean }>(
          "SELECT state = 'active' AS active FROM pg_catalog.pg_stat_activity WHERE pid = $1",
          [pid],
        );
        if (state?.active) break;
        await new Promise((resolveDelay) => setTimeout(resolveDelay, 20));
      }
      await other.cancel();
      expect((await failure).message).toContain('canceling statement due to user request');
      expect(await other.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      await other.close();
    });
  });

  describe('server facts', () => {
    let facts: ServerFacts;
    beforeAll(async () => {
      facts = await readServerFacts(session);
    });

    it('reads version, page sizes, segment size, checksums, recovery, role, system id and timeline', async () => {
      const [version] = await cluster.query<{ num: string; text: string }>(
        'postgres',
        "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text",
      );
      expect(facts).toEqual({
        serverVersionNum: Number(version!.num),
        major,
        serverVersionText: version!.text,
        blockSize: 8192,
        walBlockSize: 8192,
        walSegmentSizeBytes: segmentSizeOf(major),
        dataChecksums: true,
        isInRecovery: false,
        isSuperuser: true,
        systemIdentifier: systemIdentifierFromPgControl(cluster.dataDir),
        timelineId: 1,
      });
    });

    it('sees a role without superuser as such', async () => {
      await cluster.query('postgres', 'CREATE ROLE backup_role LOGIN');
      await cluster.query(
        'postgres',
        'GRANT EXECUTE ON FUNCTION pg_control_system() TO backup_role',
      );
      await cluster.query(
        'postgres',
        'GRANT EXECUTE ON FUNCTION pg_control_checkpoint() TO backup_role',
      );
      const plain = await connectPostgres(optionsOf(cluster, { pguser: 'backup_role' }), logger);
      try {
        const plainFacts = await readServerFacts(plain);
        expect(plainFacts.isSuperuser).toBe(false);
        expect(plainFacts.systemIdentifier).toBe(facts.systemIdentifier);
      } finally {
        await plain.close();
      }
    });

    it('logs the checksum INFO and the superuser WARNING and accepts the server', () => {
      const checkLogger = createMemoryLogger();
      checkServerForBackup(facts, {
        expectedSystemIdentifier: facts.systemIdentifier,
        logger: checkLogger,
      });
      expect(checkLogger.records.map((r) => `${r.level}: ${r.message}`)).toEqual([
        'INFO: This PostgreSQL instance was initialized with data block checksums. Data block corruption will be detected',
        'WARNING: Current PostgreSQL role is superuser. It is not recommended to run pg_probackup under superuser.',
      ]);
    });

    it('refuses what pg_probackup refuses, with its messages', () => {
      const quiet = createMemoryLogger();
      const check =
        (changed: Partial<ServerFacts>, ids: { expected?: bigint; pgdata?: bigint } = {}) =>
        () =>
          checkServerForBackup(
            { ...facts, ...changed },
            {
              expectedSystemIdentifier: ids.expected,
              pgdataSystemIdentifier: ids.pgdata,
              logger: quiet,
            },
          );
      expect(check({ blockSize: 16384 })).toThrow(
        'block_size(16384) is not compatible(8192 expected)',
      );
      expect(check({ walBlockSize: 4096 })).toThrow(
        'wal_block_size(4096) is not compatible(8192 expected)',
      );
      expect(check({ major: 10, serverVersionText: '10.23' })).toThrow(
        'Server version is 10.23, must be 11 or higher',
      );
      expect(check({ major: 19, serverVersionText: '19.0' })).toThrow(
        'Server version is 19.0, Strata supports PostgreSQL 11 to 18',
      );
      const other = facts.systemIdentifier + 1n;
      expect(check({}, { expected: other })).toThrow(
        `Backup data directory was initialized for system id ${other}, but connected instance system id is ${facts.systemIdentifier}`,
      );
      expect(check({}, { expected: facts.systemIdentifier, pgdata: other })).toThrow(
        `Backup data directory was initialized for system id ${facts.systemIdentifier}, but target backup directory system id is ${other}`,
      );
    });

    it('warns when data checksums are off', () => {
      const checkLogger = createMemoryLogger();
      checkServerForBackup(
        { ...facts, dataChecksums: false, isSuperuser: false },
        { logger: checkLogger },
      );
      expect(checkLogger.records.map((r) => `${r.level}: ${r.message}`)).toEqual([
        "WARNING: This PostgreSQL instance was initialized without data block checksums. pg_probackup have no way to detect data block corruption without them. Reinitialize PGDATA with option '--data-checksums'.",
      ]);
    });
  });

  describe('backup start and stop', () => {
    it('starts a backup at the checkpoint redo and stops it with label, xid and time', async () => {
      const backupLogger = createMemoryLogger();
      const backupSession = await connectPostgres(optionsOf(cluster), backupLogger);
      try {
        const started = await startBackup(backupSession, {
          label: 'strata test label',
          fast: true,
          major,
        });
        const [checkpoint] = await cluster.query<{ redo: string }>(
          'postgres',
          'SELECT redo_lsn::text AS redo FROM pg_control_checkpoint()',
        );
        expect(started).toEqual({ startLsn: parseLsn(checkpoint!.redo), timelineId: 1 });

        await cluster.query('postgres', 'CREATE TABLE IF NOT EXISTS marks (id int)');
        const [{ xid }] = (await cluster.query<{ xid: string }>(
          'postgres',
          'INSERT INTO marks VALUES (1) RETURNING txid_current()::text AS xid',
        )) as [{ xid: string }];
        const restorePointLsn = await createRestorePoint(backupSession, 'strata test point');
        expect(restorePointLsn).toBeGreaterThan(started.startLsn);
        const switchLsn = await switchWal(backupSession);
        expect(switchLsn).toBeGreaterThan(restorePointLsn);

        const stopped = await stopBackup(backupSession, {
          major,
          fromReplica: false,
          timeoutSeconds: 60,
        });
        expect(stopped.stopLsn).toBeGreaterThan(switchLsn);
        const startSegment = walSegmentName(
          1,
          lsnToSegno(started.startLsn, segmentSizeOf(major)),
          segmentSizeOf(major),
        );
        expect(stopped.backupLabel).toContain(
          `START WAL LOCATION: ${formatLsn(started.startLsn)} (file ${startSegment})`,
        );
        expect(stopped.backupLabel).toContain('BACKUP METHOD: streamed');
        expect(stopped.backupLabel).toContain('LABEL: strata test label');
        expect(stopped.tablespaceMap).toBe('');
        expect(stopped.recoveryXid).toBeGreaterThan(BigInt(xid));
        expect(Math.abs(stopped.stopTimeSec - Date.now() / 1000)).toBeLessThan(120);
        expect(backupLogger.records.map((r) => `${r.level}: ${r.message}`)).toEqual([
          major >= 15 ? 'INFO: wait for pg_backup_start()' : 'INFO: wait for pg_start_backup()',
          'INFO: wait for pg_stop_backup()',
          'INFO: pg_stop backup() successfully executed',
        ]);
      } finally {
        await backupSession.close();
      }
    });

    it('abortBackup takes the session out of backup mode', async () => {
      const backupLogger = createMemoryLogger();
      const backupSession = await connectPostgres(optionsOf(cluster), backupLogger);
      try {
        await startBackup(backupSession, { label: 'to abort', fast: true, major });
        await abortBackup(backupSession);
        expect(backupLogger.records.at(-1)).toMatchObject({
          level: 'WARNING',
          message: 'A backup is in progress, stopping it.',
        });
        const again = await startBackup(backupSession, { label: 'after abort', fast: true, major });
        const stopped = await stopBackup(backupSession, {
          major,
          fromReplica: false,
          timeoutSeconds: 60,
        });
        expect(stopped.backupLabel).toContain('LABEL: after abort');
        expect(stopped.stopLsn).toBeGreaterThan(again.startLsn);
      } finally {
        await backupSession.close();
      }
    });

    it('reports a stop without a backup as a failed query with the server hint', async () => {
      const error = await expectRejection(
        stopBackup(session, { major, fromReplica: false, timeoutSeconds: 60 }),
      );
      const fn = major >= 15 ? 'pg_backup_stop(false)' : 'pg_stop_backup(false, false)';
      expect(error.message).toMatch(/^query failed: ERROR: {2}.*backup is not in progress\n/);
      expect(error.message).toContain(
        `query was: SELECT pg_catalog.txid_snapshot_xmax(pg_catalog.txid_current_snapshot()) AS txid_snapshot_xmax, current_timestamp(0)::timestamptz AS current_timestamp, lsn, labelfile, spcmapfile FROM pg_catalog.${fn}`,
      );
    });
  });
});
