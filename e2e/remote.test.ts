import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseContentList } from '../core/catalog/contentList.js';
import {
  TestCluster,
  makeTempDir,
  startRestoredCluster,
  strataArchiveCommand,
} from '../core/testing/cluster.js';
import { fingerprintCluster, generateData, type ClusterFingerprint } from '../core/testing/data.js';
import { TestSshd } from '../core/testing/sshd.js';
import { completedBackupId, runStrata, spawnStrata, strata } from './strataCli.js';

/**
 * Remote operation over a real OpenSSH server on 127.0.0.1 (cli-behaviour §2.10): the "database
 * host" is this machine reached through sshd, so every PGDATA byte a backup reads or a restore
 * writes goes through the Strata agent over SSH; the CLI's byte accounting (LOG level) proves it.
 */

const major = 17;
const instance = 'main';

interface Traffic {
  sentBytes: number;
  receivedBytes: number;
  agentReadBytes: number;
  agentWrittenBytes: number;
}

/** The CLI's LOG line `Remote <host>: S bytes sent and R bytes received over SSH; the agent read A and wrote W bytes of files`. */
function traffic(stderr: string): Traffic {
  const match =
    /Remote \S+: (\d+) bytes sent and (\d+) bytes received over SSH; the agent read (\d+) and wrote (\d+) bytes of files/.exec(
      stderr,
    );
  if (!match) throw new Error(`no remote traffic line in:\n${stderr}`);
  const [sentBytes, receivedBytes, agentReadBytes, agentWrittenBytes] = match
    .slice(1)
    .map(Number) as [number, number, number, number];
  return { sentBytes, receivedBytes, agentReadBytes, agentWrittenBytes };
}

/**
 * A backup's files that came from PGDATA (everything stored except streamed WAL and the files
 * written on this side): bytes stored, and bytes of PGDATA they hold (pages without their record
 * headers, before compression).
 */
function fromPgdata(
  catalog: string,
  backupId: string,
): { storedBytes: number; pgdataBytes: number } {
  const listPath = join(catalog, 'backups', instance, backupId, 'backup_content.control');
  const localFiles = new Set(['backup_label', 'tablespace_map', 'database_map']);
  const entries = parseContentList(readFileSync(listPath, 'utf8'), listPath).filter(
    (entry) => entry.size > 0 && !entry.path.startsWith('pg_wal/') && !localFiles.has(entry.path),
  );
  return {
    storedBytes: entries.reduce((sum, entry) => sum + entry.size, 0),
    pgdataBytes: entries.reduce((sum, entry) => sum + (entry.fullSize ?? entry.size), 0),
  };
}

function backupStatus(catalog: string, backupId: string): string {
  const control = readFileSync(
    join(catalog, 'backups', instance, backupId, 'backup.control'),
    'utf8',
  );
  return /^status = (\w+)$/m.exec(control)![1]!;
}

describe('backup, restore and archiving of a remote PostgreSQL over SSH', () => {
  let sshd: TestSshd;
  let cluster: TestCluster;
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let remote: string[];
  let connection: string[];
  const restored: TestCluster[] = [];
  let fullId: string;
  let fullTraffic: Traffic;
  let deltaFingerprint: ClusterFingerprint;
  let deltaId: string;

  beforeAll(async () => {
    sshd = await TestSshd.start();
    scratch = makeTempDir('strata-e2e-remote-');
    catalog = join(scratch.path, 'catalog');
    remote = sshd.remoteArgs();
    // The database host pushes WAL to the catalog on the backup host through SSH.
    const archiveCommand = `${strataArchiveCommand(catalog, instance)} ${remote.slice(0, -1).join(' ')} "${remote.at(-1)!}"`;
    cluster = await TestCluster.create({
      major,
      settings: { archive_mode: 'on', archive_command: `'${archiveCommand.replace(/'/g, "''")}'` },
    });
    await strata(['init', '-B', catalog]);
    const added = await strata([
      'add-instance',
      '-B',
      catalog,
      '--instance',
      instance,
      '-D',
      cluster.dataDir,
      ...remote,
    ]);
    expect(added.stderr).toContain(`Instance '${instance}' successfully initialized`);
    // add-instance never saves remote options (pg_probackup); set-config does, so backups find them there.
    const config = readFileSync(join(catalog, 'backups', instance, 'pg_probackup.conf'), 'utf8');
    expect(config).not.toContain('remote-host');
    await strata(['set-config', '-B', catalog, '--instance', instance, ...remote]);
    await cluster.start();
    connection = cluster.connectionArgs();
    await generateData(cluster, { databases: ['sales', 'hr'], rowsPerTable: 20000 });
  });

  afterAll(async () => {
    for (const server of restored) await server.destroy();
    await cluster?.destroy();
    await sshd?.stop();
    scratch?.remove();
  });

  it('takes a FULL backup whose every PGDATA byte came through the agent', async () => {
    const backup = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      'FULL',
      '--stream',
      '-j',
      '4',
      ...connection,
      '--log-level-console=LOG',
    ]);
    fullId = completedBackupId(backup.stderr);
    expect(backup.stderr).toContain('remote: true');
    fullTraffic = traffic(backup.stderr);
    const { storedBytes, pgdataBytes } = fromPgdata(catalog, fullId);
    expect(storedBytes).toBeGreaterThan(20 * 1024 * 1024);
    // Everything stored from PGDATA arrived over the connection, and the agent read all of it there.
    expect(fullTraffic.receivedBytes).toBeGreaterThanOrEqual(storedBytes);
    expect(fullTraffic.agentReadBytes).toBeGreaterThanOrEqual(pgdataBytes);
    expect(fullTraffic.agentWrittenBytes).toBe(0);
    // The agent this backup ran was copied into the session's cache by the first command.
    expect(sshd.agentFiles().map((path) => path.slice(path.lastIndexOf('/') + 1))).toEqual([
      'agent-0.1.0.mjs',
    ]);
    expect(backupStatus(catalog, fullId)).toBe('OK');
  });

  it('takes a DELTA backup after a small change, moving a small fraction of the bytes', async () => {
    await cluster.query('sales', 'UPDATE accounts SET balance = balance + 1 WHERE id % 1000 = 0');
    await cluster.query('postgres', 'CHECKPOINT');
    deltaFingerprint = await fingerprintCluster(cluster);
    const backup = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      'DELTA',
      '--stream',
      '-j',
      '4',
      ...connection,
      '--log-level-console=LOG',
    ]);
    deltaId = completedBackupId(backup.stderr);
    const deltaTraffic = traffic(backup.stderr);
    expect(deltaTraffic.receivedBytes).toBeGreaterThanOrEqual(
      fromPgdata(catalog, deltaId).storedBytes,
    );
    // Every page was read on the remote side, but only changed pages and changed files crossed.
    expect(deltaTraffic.agentReadBytes).toBeGreaterThan(fullTraffic.receivedBytes * 0.9);
    expect(deltaTraffic.receivedBytes).toBeLessThan(fullTraffic.receivedBytes / 5);
    expect(backupStatus(catalog, deltaId)).toBe('OK');
  });

  it('restores the DELTA backup onto the remote host, with equal data after start', async () => {
    const target = join(scratch.path, 'restored-delta');
    const restoreDelta = async (extra: string[]): Promise<Traffic> => {
      const args = ['-B', catalog, '--instance', instance, '-i', deltaId, '-D', target];
      const result = await strata([
        'restore',
        ...args,
        ...extra,
        ...remote,
        '--log-level-console=LOG',
      ]);
      return traffic(result.stderr);
    };
    const restoreTraffic = await restoreDelta(['-j', '4']);
    expect(restoreTraffic.agentWrittenBytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(restoreTraffic.sentBytes).toBeGreaterThanOrEqual(restoreTraffic.agentWrittenBytes);
    const server = await startRestoredCluster(major, target);
    restored.push(server);
    expect(await fingerprintCluster(server)).toEqual(deltaFingerprint);
    await server.stop();

    // Again over the copy that ran: the agent compares the pages already there with the backup's
    // (checksum mode) next to them, so only its per-block results and the changed pages travel.
    const incrementalTraffic = await restoreDelta(['-I', 'checksum']);
    expect(incrementalTraffic.agentReadBytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(incrementalTraffic.receivedBytes).toBeLessThan(incrementalTraffic.agentReadBytes / 20);
    expect(incrementalTraffic.sentBytes).toBeLessThan(restoreTraffic.sentBytes / 2);
    const again2 = await startRestoredCluster(major, target);
    restored.push(again2);
    expect(await fingerprintCluster(again2)).toEqual(deltaFingerprint);
    await again2.stop();
  });

  it('archives WAL with archive-push through SSH as archive_command, and restores an ARCHIVE backup', async () => {
    await cluster.query(
      'hr',
      "INSERT INTO accounts SELECT g, 'late', 1, DATE '2024-01-01' FROM generate_series(1000001, 1000500) g",
    );
    const backup = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      'DELTA',
      '-j',
      '2',
      ...connection,
    ]);
    const archiveId = completedBackupId(backup.stderr);
    const fingerprint = await fingerprintCluster(cluster);
    await cluster.query('postgres', 'SELECT pg_switch_wal()');
    const archived = readdirSync(join(catalog, 'wal', instance)).filter((name) =>
      /^[0-9A-F]{24}$/.test(name),
    );
    expect(archived.length).toBeGreaterThan(1);
    // The archived copy of a finished segment is the server's segment, byte for byte.
    const segment = archived.sort()[0]!;
    const inPgWal = join(cluster.dataDir, 'pg_wal', segment);
    const archivedBytes = readFileSync(join(catalog, 'wal', instance, segment));
    expect(archivedBytes.length).toBe(16 * 1024 * 1024);
    if (readdirSync(join(cluster.dataDir, 'pg_wal')).includes(segment))
      expect(readFileSync(inPgWal).equals(archivedBytes)).toBe(true);

    // archive-get, as restore_command on the database host, fetches it back from the catalog host.
    const fetched = join(scratch.path, 'fetched-segment');
    const got = await strata(
      [
        'archive-get',
        '-B',
        catalog,
        '--instance',
        instance,
        `--wal-file-name=${segment}`,
        `--wal-file-path=${fetched}`,
        ...remote,
      ],
      // restore_command runs in PGDATA, whose pg_control names the instance's system.
      { cwd: cluster.dataDir },
    );
    expect(got.stderr).toContain(`archive-get WAL file: ${segment}, remote: ssh`);
    expect(readFileSync(fetched).equals(archivedBytes)).toBe(true);

    const target = join(scratch.path, 'restored-archive');
    await strata([
      'restore',
      '-B',
      catalog,
      '--instance',
      instance,
      '-i',
      archiveId,
      '-D',
      target,
      '-j',
      '2',
      ...remote,
    ]);
    const server = await startRestoredCluster(major, target);
    restored.push(server);
    const restoredFingerprint = await fingerprintCluster(server);
    expect(restoredFingerprint['hr.public.accounts']).toBe(fingerprint['hr.public.accounts']);
    expect(restoredFingerprint).toEqual(fingerprint);
    await server.stop();
  });

  it('copies the remote cluster into a local directory with catchup, then brings the copy forward with DELTA', async () => {
    const fingerprint = await fingerprintCluster(cluster);
    const destination = join(scratch.path, 'catchup-copy');
    const result = await strata([
      'catchup',
      '-b',
      'FULL',
      `--source-pgdata=${cluster.dataDir}`,
      `--destination-pgdata=${destination}`,
      '--stream',
      '-j',
      '2',
      ...connection,
      ...remote,
      '--log-level-console=LOG',
    ]);
    const fullReceived = traffic(result.stderr).receivedBytes;
    expect(fullReceived).toBeGreaterThan(20 * 1024 * 1024);
    // Started as a standby of the source, so that it stays on the source's history.
    writeFileSync(join(destination, 'standby.signal'), '');
    appendFileSync(
      join(destination, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=127.0.0.1 port=${cluster.port} user=postgres'\n`,
    );
    const server = await startRestoredCluster(major, destination);
    restored.push(server);
    expect(await fingerprintCluster(server)).toEqual(fingerprint);
    await server.stop();

    await cluster.query('sales', 'UPDATE accounts SET balance = balance + 1 WHERE id % 500 = 0');
    const changed = await fingerprintCluster(cluster);
    const delta = await strata([
      'catchup',
      '-b',
      'DELTA',
      `--source-pgdata=${cluster.dataDir}`,
      `--destination-pgdata=${destination}`,
      '--stream',
      ...connection,
      ...remote,
      '--log-level-console=LOG',
    ]);
    // The agent selects the changed pages next to the source; the rest never leaves its host.
    const deltaTraffic = traffic(delta.stderr);
    expect(deltaTraffic.agentReadBytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(deltaTraffic.receivedBytes).toBeLessThan(fullReceived / 3);
    const caughtUp = await startRestoredCluster(major, destination);
    restored.push(caughtUp);
    expect(await fingerprintCluster(caughtUp)).toEqual(changed);
    await caughtUp.stop();
  });

  it('checks the remote PGDATA with checkdb', async () => {
    const checked = await runStrata([
      'checkdb',
      '-B',
      catalog,
      '--instance',
      instance,
      ...connection,
      '--log-level-console=LOG',
    ]);
    expect(checked.code).toBe(0);
    // Every page is read and checked on the database host; only the findings come back.
    const checkTraffic = traffic(checked.stderr);
    expect(checkTraffic.agentReadBytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(checkTraffic.receivedBytes).toBeLessThan(checkTraffic.agentReadBytes / 20);
  });

  it('marks a backup whose connection dropped ERROR with a clear message; the next backup succeeds', async () => {
    const child = spawnStrata([
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      'FULL',
      '--stream',
      '-j',
      '1',
      '--progress',
      ...connection,
    ]);
    let stderr = '';
    let killed = 0;
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (killed === 0 && stderr.includes('Progress: (')) killed = sshd.killConnections();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    // The backup's connection, and any archive-push of the server's archive_command running then.
    expect(killed).toBeGreaterThanOrEqual(1);
    expect(code).toBe(1);
    const backupId = /backup ID: (\w+)/.exec(stderr)![1]!;
    expect(stderr).toContain(`WARNING: Backup ${backupId} is running, setting its status to ERROR`);
    expect(stderr).toMatch(
      new RegExp(
        `ERROR: Lost the connection to the Strata agent on ${sshd.user}@127\\.0\\.0\\.1:${sshd.port}: `,
      ),
    );
    expect(backupStatus(catalog, backupId)).toBe('ERROR');

    const retry = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      'DELTA',
      '--stream',
      '-j',
      '4',
      ...connection,
    ]);
    const retryId = completedBackupId(retry.stderr);
    expect(backupStatus(catalog, retryId)).toBe('OK');
    // The retry's parent is an OK backup, never the one left in ERROR.
    const control = readFileSync(
      join(catalog, 'backups', instance, retryId, 'backup.control'),
      'utf8',
    );
    expect(control).not.toContain(`parent-backup-id = '${backupId}'`);
    expect(
      (await strata(['validate', '-B', catalog, '--instance', instance, '-i', retryId])).stderr,
    ).toContain(`Backup ${retryId} is valid`);
  });

  it('refuses a host whose key changed, naming the host and both fingerprints, and starts no backup', async () => {
    const oldKnownHosts = join(scratch.path, 'old_known_hosts');
    copyFileSync(sshd.knownHostsPath, oldKnownHosts);
    const fingerprint = () =>
      execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${sshd.hostKeyPath}.pub`])
        .toString()
        .split(' ')[1]!;
    const oldFingerprint = fingerprint();
    await sshd.rotateHostKey();
    const backupsBefore = readdirSync(join(catalog, 'backups', instance)).length;
    const refused = await runStrata([
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      'FULL',
      '--stream',
      ...connection,
      ...sshd.remoteArgs(oldKnownHosts),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `ERROR: Host key verification failed: the ssh-ed25519 host key of "127.0.0.1" port ${sshd.port} has CHANGED.`,
    );
    expect(refused.stderr).toContain(`It presented ${fingerprint()}`);
    expect(refused.stderr).toContain(`known_hosts has ${oldFingerprint} (${oldKnownHosts}:1)`);
    expect(readdirSync(join(catalog, 'backups', instance)).length).toBe(backupsBefore);
  });
});
