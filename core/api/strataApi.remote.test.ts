import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addInstance, initCatalog, setConfig } from '../commands/instance/instance.js';
import { createLogger } from '../log.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import { TestCluster, makeTempDir, startRestoredCluster } from '../testing/cluster.js';
import { fingerprintCluster, generateData } from '../testing/data.js';
import type { ClusterFingerprint } from '../testing/data.js';
import { strataCliPath } from '../testing/pgBinaries.js';
import { TestSshd } from '../testing/sshd.js';
import type { ConnectHostRequest, JobInfo, RemoteHostInfo } from './contract.js';
import { createStrataApi } from './strataApi.js';

// The desktop app's remote hosts through StrataApi, against a real OpenSSH server on 127.0.0.1
// (core/testing/sshd.ts) and a real PostgreSQL 17: first contact and a changed host key,
// encrypted keys, a catalog read through the host, restores into a directory on the host and
// from a catalog on the host, and a backup of an instance whose pg_probackup.conf names the host.

const MAJOR = 17;
const INSTANCE = 'main';
const PASSPHRASE = 'restore drills every quarter';

describe('StrataApi with remote hosts over SSH', () => {
  const scratch = makeTempDir('strata-api-remote-');
  const catalog = join(scratch.path, 'catalog');
  const knownHosts = join(scratch.path, 'known_hosts');
  const storage = new LocalStorage();
  const api = createStrataApi({
    storage,
    strataCommand: `"${process.execPath}" "${strataCliPath}"`,
    demoDir: join(scratch.path, 'demo'),
  });
  const restored: TestCluster[] = [];
  let sshd: TestSshd;
  let cluster: TestCluster;
  let connection: { host: string; port: number; user: string; database: string };
  let fullId: string;
  let atFull: ClusterFingerprint;

  function request(overrides: Partial<ConnectHostRequest> = {}): ConnectHostRequest {
    return {
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      remotePath: dirname(process.execPath),
      sshOptions: `-i ${sshd.clientKeyPath} -o IdentitiesOnly=yes -o UserKnownHostsFile=${knownHosts} -o GlobalKnownHostsFile=none`,
      ...overrides,
    };
  }

  /** The fingerprint `ssh-keygen -lf` prints for the server's host key, as a DBA checks it. */
  function serverFingerprint(): string {
    const line = execFileSync('ssh-keygen', ['-lf', `${sshd.hostKeyPath}.pub`], {
      encoding: 'utf8',
    });
    return line.split(' ')[1]!;
  }

  async function connected(): Promise<RemoteHostInfo> {
    const result = await api.connectHost(request({ trustHostKey: serverFingerprint() }));
    if (result.status !== 'connected') throw new Error(`not connected: ${JSON.stringify(result)}`);
    return result.host;
  }

  async function runJob(start: Promise<JobInfo>): Promise<JobInfo> {
    const job = await api.waitForJob((await start).id);
    if (job.state !== 'succeeded') {
      const log = (await api.getJobLog(job.id)).map((line) => `${line.level}: ${line.message}`);
      throw new Error(`job ${job.title} ${job.state}: ${job.error}\n${log.join('\n')}`);
    }
    return job;
  }

  beforeAll(async () => {
    sshd = await TestSshd.start({ clientKeyPassphrase: PASSPHRASE });
    cluster = await TestCluster.create({ major: MAJOR });
    const ctx = { storage, logger: createLogger(() => undefined), now: Date.now };
    await initCatalog(ctx, catalog);
    await addInstance(ctx, {
      backupPath: catalog,
      instance: INSTANCE,
      pgdata: cluster.dataDir,
      overrides: {},
    });
    await cluster.start();
    connection = { host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' };
    await generateData(cluster, { databases: ['shop'], rowsPerTable: 2000 });
    const full = await runJob(
      api.startBackup({
        backupPath: catalog,
        instance: INSTANCE,
        mode: 'FULL',
        stream: true,
        connection,
      }),
    );
    fullId = (await api.listBackups(catalog, INSTANCE))[0]!.id;
    expect(full.state).toBe('succeeded');
    atFull = await fingerprintCluster(cluster);
  });

  afterAll(async () => {
    await api.close();
    for (const server of restored) await server.destroy();
    await cluster?.destroy();
    await sshd?.stop();
    scratch.remove();
  });

  it('asks before trusting a host it has never seen, and records the key only once trusted', async () => {
    writeFileSync(knownHosts, '');
    const first = await api.connectHost(request());
    expect(first).toEqual({
      status: 'unknown-host-key',
      host: sshd.host,
      port: sshd.port,
      keyType: 'ssh-ed25519',
      fingerprint: serverFingerprint(),
      knownHostsFile: knownHosts,
    });
    expect(readFileSync(knownHosts, 'utf8')).toBe('');
    expect(await api.listHosts()).toEqual([]);

    const otherFingerprint = `SHA256:${'A'.repeat(43)}`;
    expect((await api.connectHost(request({ trustHostKey: otherFingerprint }))).status).toBe(
      'unknown-host-key',
    );
    expect(readFileSync(knownHosts, 'utf8')).toBe('');

    const host = await connected();
    expect(host).toMatchObject({
      id: `${sshd.user}@127.0.0.1:${sshd.port}`,
      hostKey: { keyType: 'ssh-ed25519', fingerprint: serverFingerprint() },
      nodeVersion: process.versions.node,
      connected: true,
      problem: null,
    });
    expect(readFileSync(knownHosts, 'utf8')).toContain(`[127.0.0.1]:${sshd.port} ssh-ed25519 `);
    expect((await api.listHosts()).map((listed) => listed.id)).toEqual([host.id]);
    const again = await api.connectHost(request());
    expect(again.status).toBe('connected');
  });

  it('refuses a host whose key changed, naming the key it presented and the one known', async () => {
    const otherKey = join(scratch.path, 'other_host_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const changedKnownHosts = join(scratch.path, 'known_hosts_changed');
    const otherPublic = readFileSync(`${otherKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(changedKnownHosts, `[127.0.0.1]:${sshd.port} ${otherPublic}\n`);
    const otherFingerprint = execFileSync('ssh-keygen', ['-lf', `${otherKey}.pub`], {
      encoding: 'utf8',
    }).split(' ')[1]!;
    const refused = await api
      .connectHost(
        request({
          sshOptions: `-i ${sshd.clientKeyPath} -o IdentitiesOnly=yes -o UserKnownHostsFile=${changedKnownHosts} -o GlobalKnownHostsFile=none`,
          trustHostKey: serverFingerprint(),
        }),
      )
      .then(
        () => undefined,
        (error: unknown) => error as Error,
      );
    expect(refused?.message).toContain('has CHANGED');
    expect(refused?.message).toContain(serverFingerprint());
    expect(refused?.message).toContain(otherFingerprint);
  });

  it('asks for the passphrase of an encrypted key, and connects with it', async () => {
    const encrypted = request({
      sshOptions: `-i ${sshd.encryptedClientKeyPath} -o IdentitiesOnly=yes -o UserKnownHostsFile=${knownHosts} -o GlobalKnownHostsFile=none`,
    });
    expect(await api.connectHost(encrypted)).toEqual({
      status: 'passphrase-needed',
      keyFile: sshd.encryptedClientKeyPath,
    });
    const wrong = await api.connectHost({ ...encrypted, passphrase: 'not it' }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(wrong?.message).toContain('Permission denied');
    const result = await api.connectHost({ ...encrypted, passphrase: PASSPHRASE });
    expect(result.status).toBe('connected');
    await connected();
  });

  it('reads a catalog through the host exactly as it reads it here', async () => {
    const host = await connected();
    const location = `ssh://${host.id}${catalog}`;
    const here = await api.openCatalog(catalog);
    const there = await api.openCatalog(location);
    expect(there).toEqual({ ...here, backupPath: location });
    expect(await api.listBackups(location, INSTANCE)).toEqual(
      await api.listBackups(catalog, INSTANCE),
    );
    expect(await api.getBackup(location, INSTANCE, fullId)).toEqual(
      await api.getBackup(catalog, INSTANCE, fullId),
    );
    const before = (await api.listHosts())[0]!.traffic.bytesReceived;
    await api.listBackupFiles(location, INSTANCE, fullId, { offset: 0, limit: 10 });
    expect((await api.listHosts())[0]!.traffic.bytesReceived).toBeGreaterThan(before);

    const unknownHost = api.openCatalog(`ssh://nobody@db9.example:22${catalog}`);
    await expect(unknownHost).rejects.toMatchObject({ code: 'remote-not-connected' });
    await expect(
      api.startBackup({ backupPath: location, instance: INSTANCE, mode: 'DELTA', stream: true }),
    ).rejects.toThrow(/run on that host.*ssh -p \d+/);
  });

  it('restores into a directory on the host, through the agent, and the server starts with the data', async () => {
    const host = await connected();
    const destination = join(scratch.path, 'restored-on-host');
    const restoreRequest = {
      backupPath: catalog,
      instance: INSTANCE,
      target: { kind: 'immediate' as const },
      destination,
      destinationHost: host.id,
    };
    const plan = await api.planRestore(restoreRequest);
    expect(plan.problem).toBeNull();
    expect(plan.backupId).toBe(fullId);
    expect(plan.cliCommand).toBe(
      `strata restore -B ${catalog} --instance=main -D ${destination} --recovery-target=immediate ` +
        `--remote-host=127.0.0.1 --remote-port=${sshd.port} --remote-user=${sshd.user} ` +
        `--remote-path=${dirname(process.execPath)} --ssh-options='${host.sshOptions}'`,
    );
    const sentBefore = (await api.listHosts())[0]!.traffic.bytesSent;
    const job = await runJob(api.startRestore(restoreRequest));
    expect(job.title).toContain(`on ${host.id}`);
    const sent = (await api.listHosts())[0]!.traffic.bytesSent - sentBefore;
    const restoredBytes = Number(
      execFileSync('du', ['-sb', '--exclude=pg_wal', destination], { encoding: 'utf8' }).split(
        '\t',
      )[0],
    );
    expect(sent).toBeGreaterThan(restoredBytes * 0.9);
    const log = await api.getJobLog(job.id);
    expect(
      log.some((line) => line.level === 'WARNING' && line.message.includes('restore_command')),
    ).toBe(true);
    expect(readFileSync(join(destination, 'postgresql.auto.conf'), 'utf8')).toContain(
      `restore_command = 'strata archive-get -B "${catalog}" --instance "${INSTANCE}"`,
    );
    // Recovery runs restore_command on the destination host, where Strata is installed as
    // `strata`; here that host is this machine, so a `strata` on PATH plays the installed one.
    const bin = join(scratch.path, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      join(bin, 'strata'),
      `#!/bin/sh\nexec "${process.execPath}" "${strataCliPath}" "$@"\n`,
      { mode: 0o755 },
    );
    const path = process.env['PATH'];
    process.env['PATH'] = `${bin}:${path}`;
    try {
      const server = await startRestoredCluster(MAJOR, destination);
      restored.push(server);
      expect(await fingerprintCluster(server)).toEqual(atFull);
    } finally {
      process.env['PATH'] = path;
    }
  });

  it('restores from a catalog on the host into this computer, fetching WAL back from that host', async () => {
    const host = await connected();
    const location = `ssh://${host.id}${catalog}`;
    const destination = join(scratch.path, 'restored-from-host');
    const restoreRequest = {
      backupPath: location,
      instance: INSTANCE,
      target: { kind: 'immediate' as const },
      destination,
    };
    const plan = await api.planRestore(restoreRequest);
    expect(plan.problem).toBeNull();
    expect(plan.cliCommand).toMatch(
      new RegExp(
        `^ssh -p ${sshd.port} ${sshd.user}@127\\.0\\.0\\.1 'strata restore -B ${catalog} .*--remote-host=`,
      ),
    );
    await runJob(api.startRestore(restoreRequest));
    const autoConf = readFileSync(join(destination, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toContain(
      `archive-get -B "${catalog}" --instance "${INSTANCE}" --wal-file-path=%p --wal-file-name=%f ` +
        `--remote-host=127.0.0.1 --remote-port=${sshd.port} --remote-user=${sshd.user}`,
    );
    const server = await startRestoredCluster(MAJOR, destination);
    restored.push(server);
    expect(await fingerprintCluster(server)).toEqual(atFull);
  });

  it('backs up an instance whose pg_probackup.conf names the host through that connection', async () => {
    const ctx = { storage, logger: createLogger(() => undefined), now: Date.now };
    await setConfig(ctx, {
      backupPath: catalog,
      instance: INSTANCE,
      overrides: {
        remoteHost: '127.0.0.1',
        remotePort: String(sshd.port),
        remoteUser: sshd.user,
      },
    });
    const [summary] = (await api.openCatalog(catalog)).instances;
    expect(summary?.remote).toEqual({ host: '127.0.0.1', port: sshd.port, user: sshd.user });

    const host = (await api.listHosts())[0]!;
    await api.disconnectHost(host.id);
    expect(await api.listHosts()).toEqual([]);
    const delta = {
      backupPath: catalog,
      instance: INSTANCE,
      mode: 'DELTA' as const,
      stream: true,
      connection,
    };
    await expect(api.startBackup(delta)).rejects.toMatchObject({ code: 'remote-not-connected' });

    await connected();
    await cluster.query('shop', 'UPDATE accounts SET balance = balance + 1 WHERE id % 50 = 0');
    const atDelta = await fingerprintCluster(cluster);
    const receivedBefore = (await api.listHosts())[0]!.traffic.bytesReceived;
    const job = await runJob(api.startBackup(delta));
    expect(job.title).toContain(`from ${host.id}`);
    expect((await api.listHosts())[0]!.traffic.bytesReceived).toBeGreaterThan(receivedBefore);

    const destination = join(scratch.path, 'restored-delta');
    const restoreRequest = {
      backupPath: catalog,
      instance: INSTANCE,
      target: { kind: 'immediate' as const },
      destination,
    };
    const plan = await api.planRestore(restoreRequest);
    expect(plan.chain.map((backup) => backup.mode)).toEqual(['FULL', 'DELTA']);
    expect(plan.cliCommand).toContain('--remote-proto=none');
    await runJob(api.startRestore(restoreRequest));
    const server = await startRestoredCluster(MAJOR, destination);
    restored.push(server);
    expect(await fingerprintCluster(server)).toEqual(atDelta);
  });
});
