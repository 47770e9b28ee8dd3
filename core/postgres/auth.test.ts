import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../format/crc32c.js';
import { parseLsn, type Lsn } from '../format/lsn.js';
import { createMemoryLogger } from '../log.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import { makeTempDir, TestCluster } from '../testing/cluster.js';
import { installedMajors } from '../testing/pgBinaries.js';
import { connectPostgres, type ConnectionOptions } from './connection.js';
import { WalReceiver } from './walReceiver.js';

const majors = [13, 17].filter((major) => installedMajors().includes(major));

/** Roles that may only log in with a password: pg_hba.conf is first-match, so these lines go first. */
const passwordHbaLines = [
  'host all scram_user 127.0.0.1/32 scram-sha-256',
  'host replication scram_user 127.0.0.1/32 scram-sha-256',
  'host all md5_user 127.0.0.1/32 md5',
  'host replication md5_user 127.0.0.1/32 md5',
].join('\n');

const roles = [
  { user: 'scram_user', password: 'scram secret', verifierPrefix: 'SCRAM-SHA-256$' },
  { user: 'md5_user', password: "md5 'secret'", verifierPrefix: 'md5' },
];

describe.each(majors)('password authentication on PostgreSQL %i', (major) => {
  let cluster: TestCluster;

  const optionsFor = (user: string, password?: string): ConnectionOptions => ({
    pghost: '127.0.0.1',
    pgport: String(cluster.port),
    pguser: user,
    pgdatabase: 'postgres',
    ...(password === undefined ? {} : { password }),
  });

  beforeAll(async () => {
    cluster = await TestCluster.create({
      major,
      settings: { password_encryption: "'scram-sha-256'" },
    });
    await cluster.start();
    await cluster.withClient('postgres', async (client) => {
      await client.query(
        "CREATE ROLE scram_user LOGIN REPLICATION SUPERUSER PASSWORD 'scram secret'",
      );
      await client.query("SET password_encryption = 'md5'");
      await client.query(
        "CREATE ROLE md5_user LOGIN REPLICATION SUPERUSER PASSWORD 'md5 ''secret'''",
      );
    });
    const hbaPath = join(cluster.dataDir, 'pg_hba.conf');
    writeFileSync(hbaPath, `${passwordHbaLines}\n${readFileSync(hbaPath, 'utf8')}`);
    await cluster.query('postgres', 'SELECT pg_reload_conf()');
    // The postmaster reloads asynchronously: wait until a wrong password is refused.
    for (let attempt = 0; ; attempt++) {
      const refused = await connectPostgres(
        optionsFor('scram_user', 'wrong'),
        createMemoryLogger(),
      ).then(
        async (session) => {
          await session.close();
          return false;
        },
        () => true,
      );
      if (refused) break;
      if (attempt > 200) throw new Error('pg_hba.conf was not reloaded');
      await new Promise((resolveDelay) => setTimeout(resolveDelay, 25));
    }
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it.each(roles)(
    'stores $user with a $verifierPrefix verifier',
    async ({ user, verifierPrefix }) => {
      const [row] = await cluster.query<{ rolpassword: string }>(
        'postgres',
        'SELECT rolpassword FROM pg_authid WHERE rolname = $1',
        [user],
      );
      expect(row!.rolpassword.startsWith(verifierPrefix)).toBe(true);
    },
  );

  it.each(roles)(
    'connectPostgres authenticates $user and refuses a wrong password',
    async ({ user, password }) => {
      const session = await connectPostgres(optionsFor(user, password), createMemoryLogger());
      expect(await session.query('SELECT current_user AS who')).toEqual([{ who: user }]);
      expect(session.primaryConninfo()).not.toContain('password');
      await session.close();
      await expect(
        connectPostgres(optionsFor(user, 'wrong'), createMemoryLogger()),
      ).rejects.toThrow(
        `could not connect to database postgres: password authentication failed for user "${user}"`,
      );
    },
  );

  it.each(roles)('the WAL receiver authenticates $user and streams', async ({ user, password }) => {
    const walDir = makeTempDir('strata-auth-stream-');
    try {
      const lsn = async (): Promise<Lsn> => {
        const [row] = await cluster.query<{ lsn: string }>(
          'postgres',
          'SELECT pg_current_wal_insert_lsn()::text AS lsn',
        );
        return parseLsn(row!.lsn);
      };
      const receiver = await WalReceiver.start({
        connection: optionsFor(user, password),
        storage: new LocalStorage(),
        walDir: walDir.path,
        startLsn: await lsn(),
        timelineId: 1,
        walSegmentSizeBytes: 16 * 1024 * 1024,
        logger: createMemoryLogger(),
      });
      const [walsender] = await cluster.query<{ usename: string }>(
        'postgres',
        'SELECT usename FROM pg_stat_replication',
      );
      expect(walsender).toEqual({ usename: user });
      await cluster.query(
        'postgres',
        'CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t SELECT generate_series(1, 1000)',
      );
      const result = await receiver.stopAt(await lsn(), 60_000);
      expect(result.segments.length).toBeGreaterThan(0);
      for (const segment of result.segments) {
        expect(segment.crc).toBe(crc32c(readFileSync(join(walDir.path, segment.name))));
      }
      await expect(
        WalReceiver.start({
          connection: optionsFor(user, 'wrong'),
          storage: new LocalStorage(),
          walDir: walDir.path,
          startLsn: await lsn(),
          timelineId: 1,
          walSegmentSizeBytes: 16 * 1024 * 1024,
          logger: createMemoryLogger(),
        }),
      ).rejects.toThrow(`password authentication failed for user "${user}"`);
    } finally {
      walDir.remove();
    }
  });
});
