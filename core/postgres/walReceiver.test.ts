import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError, type StrataError } from '../errors.js';
import { crc32c } from '../format/crc32c.js';
import { formatLsn, parseLsn, type Lsn } from '../format/lsn.js';
import { createMemoryLogger } from '../log.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import { makeTempDir, TestCluster } from '../testing/cluster.js';
import { installedMajors } from '../testing/pgBinaries.js';
import type { ConnectionOptions } from './connection.js';
import { lsnToSegno, walSegmentName } from '../format/walNames.js';
import {
  fetchTimelineHistory,
  WalReceiver,
  type WalReceiverOptions,
  type WalReceiverResult,
} from './walReceiver.js';

const majors = [13, 17].filter((major) => installedMajors().includes(major));
const storage = new LocalStorage();

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 0; attempt < 250; attempt++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function expectRejection(promise: Promise<unknown>): Promise<StrataError> {
  try {
    await promise;
  } catch (error) {
    if (!isStrataError(error)) throw error;
    return error;
  }
  throw new Error('expected a rejection');
}

describe.each(majors)('WAL receiver on PostgreSQL %i', (major) => {
  /** 17 runs with 1 MB segments, 13 with 16 MB: both segment layouts are exercised. */
  const segmentSize = major === 17 ? 1024 * 1024 : 16 * 1024 * 1024;
  let cluster: TestCluster;
  let systemId: bigint;
  let walDir: { path: string; remove: () => void };

  const connection = (): ConnectionOptions => ({
    pghost: '127.0.0.1',
    pgport: cluster.port,
    pguser: 'postgres',
  });
  const lsnOf = async (expression: string): Promise<Lsn> => {
    const [row] = await cluster.query<{ lsn: string }>(
      'postgres',
      `SELECT (${expression})::text AS lsn`,
    );
    return parseLsn(row!.lsn);
  };
  const receiverOptions = (
    startLsn: Lsn,
    extra: Partial<WalReceiverOptions> = {},
  ): WalReceiverOptions => ({
    connection: connection(),
    storage,
    walDir: walDir.path,
    startLsn,
    timelineId: 1,
    walSegmentSizeBytes: segmentSize,
    expectedSystemIdentifier: systemId,
    logger: createMemoryLogger(),
    ...extra,
  });
  /** Table rows, and two segment switches so that several segments complete while streaming. */
  const generateWal = async () => {
    await cluster.query('postgres', 'CREATE TABLE IF NOT EXISTS filler (id int, pad text)');
    for (let round = 0; round < 2; round++) {
      await cluster.query(
        'postgres',
        "INSERT INTO filler SELECT g, repeat('w', 300) FROM generate_series(1, 5000) g",
      );
      await cluster.query('postgres', 'SELECT pg_switch_wal()');
    }
    await cluster.query(
      'postgres',
      "INSERT INTO filler SELECT g, repeat('z', 300) FROM generate_series(1, 3000) g",
    );
  };
  const walsenderCount = async () => {
    const [row] = await cluster.query<{ count: string }>(
      'postgres',
      'SELECT count(*)::text AS count FROM pg_stat_replication',
    );
    return Number(row!.count);
  };

  /** The streamed files are the segments from the start one to the one holding the last byte, full size, with their CRCs. */
  const expectStreamedSegments = (startLsn: Lsn, result: WalReceiverResult, timelineId = 1) => {
    const firstSegNo = lsnToSegno(startLsn, segmentSize);
    const lastSegNo = lsnToSegno(result.lastFlushLsn - 1n, segmentSize);
    const names: string[] = [];
    for (let segNo = firstSegNo; segNo <= lastSegNo; segNo++)
      names.push(walSegmentName(timelineId, segNo, segmentSize));
    expect(result.segments.map((segment) => segment.name)).toEqual(names);
    for (const segment of result.segments) {
      const bytes = readFileSync(join(walDir.path, segment.name));
      expect(segment.sizeBytes).toBe(segmentSize);
      expect(bytes.length).toBe(segmentSize);
      expect(segment.crc).toBe(crc32c(bytes));
    }
    return names;
  };

  beforeAll(async () => {
    cluster = await TestCluster.create({
      major,
      initdbArgs: major === 17 ? ['--wal-segsize=1'] : [],
      // Keeps the server's own segments so the streamed copies can be compared with them.
      settings: { wal_keep_size: "'1GB'", max_replication_slots: '10' },
    });
    await cluster.start();
    const [row] = await cluster.query<{ id: string }>(
      'postgres',
      'SELECT system_identifier::text AS id FROM pg_control_system()',
    );
    systemId = BigInt(row!.id);
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  beforeEach(() => {
    walDir = makeTempDir('strata-stream-');
  });

  afterEach(() => walDir.remove());

  it("streams WAL into full-size segments equal to the server's own, and stops at the target", async () => {
    const startLsn = await lsnOf('pg_current_wal_insert_lsn()');
    const options = receiverOptions(startLsn);
    const receiver = await WalReceiver.start(options);
    await generateWal();
    const target = await lsnOf('pg_current_wal_insert_lsn()');
    const result = await receiver.stopAt(target, 60_000);

    expect(result.lastFlushLsn).toBeGreaterThanOrEqual(target);
    expect(result.lastFlushLsn).toBeLessThanOrEqual(await lsnOf('pg_current_wal_flush_lsn()'));
    expect(result.historyFile).toBeNull();
    const names = expectStreamedSegments(startLsn, result);
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(readdirSync(walDir.path)).toEqual(names);

    for (const name of names.slice(0, -1)) {
      const streamed = readFileSync(join(walDir.path, name));
      const server = readFileSync(join(cluster.dataDir, 'pg_wal', name));
      expect(streamed.equals(server), `segment ${name}`).toBe(true);
    }
    const lastName = names.at(-1)!;
    const filled = Number(result.lastFlushLsn % BigInt(segmentSize)) || segmentSize;
    const last = readFileSync(join(walDir.path, lastName));
    const serverLast = readFileSync(join(cluster.dataDir, 'pg_wal', lastName));
    expect(last.subarray(0, filled).equals(serverLast.subarray(0, filled))).toBe(true);
    expect(last.subarray(filled).every((byte) => byte === 0)).toBe(true);

    const segmentStart = startLsn - (startLsn % BigInt(segmentSize));
    const messages = options.logger as ReturnType<typeof createMemoryLogger>;
    expect(messages.records.map((r) => `${r.level}: ${r.message}`)).toContain(
      `LOG: started streaming WAL at ${formatLsn(segmentStart)} (timeline 1)`,
    );
    expect(messages.records.at(-1)).toMatchObject({
      level: 'LOG',
      message: `finished streaming WAL at ${formatLsn(result.lastFlushLsn)} (timeline 1)`,
    });
    await until('the walsender to exit', async () =>
      (await walsenderCount()) === 0 ? true : undefined,
    );
  });

  it('streams through a temporary slot that disappears with the connection', async () => {
    const startLsn = await lsnOf('pg_current_wal_insert_lsn()');
    const receiver = await WalReceiver.start(
      receiverOptions(startLsn, {
        slot: { name: 'strata_tmp_slot', temporary: true, create: true },
      }),
    );
    const slots = await cluster.query<{ slot_type: string; temporary: boolean; active: boolean }>(
      'postgres',
      "SELECT slot_type, temporary, active FROM pg_replication_slots WHERE slot_name = 'strata_tmp_slot'",
    );
    expect(slots).toEqual([{ slot_type: 'physical', temporary: true, active: true }]);
    await cluster.query(
      'postgres',
      "INSERT INTO filler SELECT g, 'slot' FROM generate_series(1, 1000) g",
    );
    const target = await lsnOf('pg_current_wal_insert_lsn()');
    const result = await receiver.stopAt(target, 60_000);
    expectStreamedSegments(startLsn, result);
    await until('the temporary slot to go', async () => {
      const rows = await cluster.query(
        'postgres',
        "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'strata_tmp_slot'",
      );
      return rows.length === 0 ? true : undefined;
    });
  });

  it('creates a permanent slot, reports its flush position, and streams again through it', async () => {
    const startLsn = await lsnOf('pg_current_wal_insert_lsn()');
    const slot = { name: 'strata_perm_slot', temporary: false, create: true };
    const first = await WalReceiver.start(receiverOptions(startLsn, { slot }));
    const [created] = await cluster.query<{
      slot_type: string;
      temporary: boolean;
      restart_lsn: string | null;
    }>(
      'postgres',
      "SELECT slot_type, temporary, restart_lsn::text FROM pg_replication_slots WHERE slot_name = 'strata_perm_slot'",
    );
    expect(created).toMatchObject({ slot_type: 'physical', temporary: false });
    expect(created!.restart_lsn).not.toBeNull();
    await generateWal();
    const firstResult = await first.stopAt(await lsnOf('pg_current_wal_insert_lsn()'), 60_000);
    expectStreamedSegments(startLsn, firstResult);

    const kept = await until('the slot to be released', async () => {
      const [row] = await cluster.query<{ active: boolean; restart_lsn: string }>(
        'postgres',
        "SELECT active, restart_lsn::text FROM pg_replication_slots WHERE slot_name = 'strata_perm_slot'",
      );
      return row && !row.active ? row : undefined;
    });
    // Completed segments were reported flushed, so the slot no longer holds the WAL before them.
    expect(parseLsn(kept.restart_lsn)).toBeGreaterThan(startLsn);
    expect(parseLsn(kept.restart_lsn)).toBeLessThanOrEqual(firstResult.lastFlushLsn);

    const duplicate = await expectRejection(WalReceiver.start(receiverOptions(startLsn, { slot })));
    expect(duplicate.message).toBe(
      'Couldn\'t create physical replication slot strata_perm_slot: ERROR:  replication slot "strata_perm_slot" already exists',
    );

    walDir.remove();
    walDir = makeTempDir('strata-stream-');
    const secondStart = firstResult.lastFlushLsn;
    const second = await WalReceiver.start(
      receiverOptions(secondStart, { slot: { ...slot, create: false } }),
    );
    await cluster.query(
      'postgres',
      "INSERT INTO filler SELECT g, 'again' FROM generate_series(1, 1000) g",
    );
    const secondResult = await second.stopAt(await lsnOf('pg_current_wal_insert_lsn()'), 60_000);
    expectStreamedSegments(secondStart, secondResult);
    await until('the slot to be released', async () => {
      const [row] = await cluster.query<{ active: boolean }>(
        'postgres',
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'strata_perm_slot'",
      );
      return row && !row.active ? true : undefined;
    });
    await cluster.query('postgres', "SELECT pg_drop_replication_slot('strata_perm_slot')");
  });

  it("refuses a server with another system identifier or timeline, with pg_probackup's messages", async () => {
    const startLsn = await lsnOf('pg_current_wal_insert_lsn()');
    const wrongId = systemId + 1n;
    const mismatch = await expectRejection(
      WalReceiver.start(receiverOptions(startLsn, { expectedSystemIdentifier: wrongId })),
    );
    expect(mismatch.message).toBe(
      `System identifier mismatch. Connected PostgreSQL instance has system id: ${systemId}. Expected: ${wrongId}.`,
    );
    const timeline = await expectRejection(
      WalReceiver.start(receiverOptions(startLsn, { timelineId: 26 })),
    );
    expect(timeline.message).toBe(
      'Timeline identifier mismatch. Connected PostgreSQL instance has timeline id: 1. Expected: 1A.',
    );
    expect(await walsenderCount()).toBe(0);
  });

  it("refuses to start beyond the server's WAL, with the server's reason", async () => {
    const ahead = (await lsnOf('pg_current_wal_flush_lsn()')) + 64n * BigInt(segmentSize);
    const error = await expectRejection(WalReceiver.start(receiverOptions(ahead)));
    const segmentStart = ahead - (ahead % BigInt(segmentSize));
    expect(error.message).toMatch(
      new RegExp(
        `^Could not start WAL streaming at ${formatLsn(segmentStart)} \\(timeline 1\\): requested starting point .* is ahead of the WAL flush position`,
      ),
    );
  });

  it('gives up on a target that is not streamed in time, leaving nothing running', async () => {
    const startLsn = await lsnOf('pg_current_wal_insert_lsn()');
    const receiver = await WalReceiver.start(receiverOptions(startLsn));
    const target = (await lsnOf('pg_current_wal_flush_lsn()')) + 8n * BigInt(segmentSize);
    const error = await expectRejection(receiver.stopAt(target, 1000));
    expect(error.code).toBe('wal');
    expect(error.message).toBe(
      `Target LSN ${formatLsn(target)} could not be streamed in 1 seconds`,
    );
    await until('the walsender to exit', async () =>
      (await walsenderCount()) === 0 ? true : undefined,
    );
  });

  it('fails clearly, without hanging, when the server kills the walsender', async () => {
    const startLsn = await lsnOf('pg_current_wal_insert_lsn()');
    let reportFailure: (error: StrataError) => void = () => undefined;
    const reported = new Promise<StrataError>((resolveReport) => (reportFailure = resolveReport));
    const receiver = await WalReceiver.start(
      receiverOptions(startLsn, { onFailure: (error) => reportFailure(error) }),
    );
    await cluster.query('postgres', 'SELECT pg_terminate_backend(pid) FROM pg_stat_replication');
    const failure = await reported;
    expect(failure.code).toBe('wal');
    expect(failure.message).toMatch(
      /^WAL streaming failed at [0-9A-F]+\/[0-9A-F]+: terminating connection due to administrator command/,
    );
    const stop = await expectRejection(
      receiver.stopAt((await lsnOf('pg_current_wal_flush_lsn()')) + 1n, 60_000),
    );
    expect(stop).toBe(failure);
  });

  it('follows a promoted server onto timeline 2 and keeps its history file', async () => {
    await cluster.stop();
    cluster.writeDataFile('standby.signal', '');
    await cluster.start();
    await cluster.query('postgres', 'SELECT pg_promote()');
    const serverHistory = readFileSync(join(cluster.dataDir, 'pg_wal', '00000002.history'));

    expect(await fetchTimelineHistory(connection(), 2)).toBe(serverHistory.toString('utf8'));
    expect(await fetchTimelineHistory(connection(), 1)).toBeNull();
    expect(await fetchTimelineHistory(connection(), 9)).toBeNull();

    const startLsn = await lsnOf('pg_current_wal_insert_lsn()');
    const receiver = await WalReceiver.start(receiverOptions(startLsn, { timelineId: 2 }));
    await cluster.query(
      'postgres',
      "INSERT INTO filler SELECT g, 'tli2' FROM generate_series(1, 2000) g",
    );
    const result = await receiver.stopAt(await lsnOf('pg_current_wal_insert_lsn()'), 60_000);

    expect(result.historyFile).toEqual({
      name: '00000002.history',
      sizeBytes: serverHistory.length,
      crc: crc32c(serverHistory),
    });
    expect(readFileSync(join(walDir.path, '00000002.history')).equals(serverHistory)).toBe(true);
    const names = expectStreamedSegments(startLsn, result, 2);
    expect(names[0]!.startsWith('00000002')).toBe(true);
    expect(readdirSync(walDir.path)).toEqual(['00000002.history', ...names].sort());
  });
});
