import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStrataError } from '../errors.js';
import { crc32c } from '../format/crc32c.js';
import { TestSshd } from '../testing/sshd.js';
import { SshStorage } from '../storage/ssh/sshStorage.js';
import { openRemoteHost, type RemoteHost } from './remoteHost.js';
import { remoteTarget, type RemoteTarget } from './remoteOptions.js';
import type { UnknownHostKey } from './ssh/sshConnection.js';

const PASSPHRASE = 'correct horse battery staple';
const VERSION = '0.0.0-test';
let sshd: TestSshd;
let scratch: string;

beforeAll(async () => {
  sshd = await TestSshd.start({ clientKeyPassphrase: PASSPHRASE });
  scratch = mkdtempSync(join(tmpdir(), 'strata-remote-host-'));
});

afterAll(async () => {
  await sshd?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

function target(
  overrides: {
    knownHosts?: string;
    extra?: string;
    remotePath?: string;
    agentSocket?: string;
  } = {},
): RemoteTarget {
  const sshOptions = sshd.sshOptions(
    overrides.knownHosts ?? sshd.knownHostsPath,
    overrides.extra ?? '',
  );
  return remoteTarget(
    {
      remoteHost: sshd.host,
      remotePort: String(sshd.port),
      remoteUser: sshd.user,
      sshOptions,
      remotePath: overrides.remotePath ?? dirname(process.execPath),
    },
    { agentSocket: overrides.agentSocket },
  )!;
}

function fingerprintOf(publicKeyPath: string): string {
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', publicKeyPath])
    .toString()
    .split(' ')[1]!;
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(isStrataError(error)).toBe(true);
  return (error as Error).message;
}

async function withHost<T>(host: RemoteHost, work: (host: RemoteHost) => Promise<T>): Promise<T> {
  try {
    return await work(host);
  } finally {
    await host.close();
  }
}

describe('a remote host over a real OpenSSH server', () => {
  it('copies the agent on first contact, reuses it after, and replaces one of another version', async () => {
    const first = await openRemoteHost(target(), { programVersion: VERSION });
    await withHost(first, async (host) => {
      expect(host.agentInstalled).toBe(true);
      expect(host.hostKey.status).toBe('known');
      expect(host.hostKey.fingerprint).toBe(fingerprintOf(`${sshd.hostKeyPath}.pub`));
      const path = join(scratch, 'hello');
      writeFileSync(path, 'hello over ssh');
      const storage = new SshStorage(host.session);
      expect((await storage.readFile(path)).toString()).toBe('hello over ssh');
      expect(host.traffic().bytesReceived).toBeGreaterThan('hello over ssh'.length);
    });
    const installed = join(sshd.cacheDir, 'strata', `agent-${VERSION}.mjs`);
    expect(sshd.agentFiles()).toEqual([installed]);
    expect(
      await openRemoteHost(target(), { programVersion: VERSION }).then((host) =>
        withHost(host, async () => host.agentInstalled),
      ),
    ).toBe(false);

    writeFileSync(installed, `${readFileSync(installed, 'utf8')}\n// another version\n`);
    const replaced = await openRemoteHost(target(), { programVersion: VERSION });
    await withHost(replaced, async (host) => {
      expect(host.agentInstalled).toBe(true);
      expect(host.session.hello.agentHash).toBe(
        execFileSync('sha256sum', [installed]).toString().split(' ')[0],
      );
    });
  });

  it('runs parallel requests over one SSH connection', async () => {
    const files = Array.from({ length: 8 }, (_, index) => {
      const data = Buffer.alloc(3 * 1024 * 1024 + index, index + 1);
      const path = join(scratch, `parallel-${index}`);
      writeFileSync(path, data);
      return { path, crc: crc32c(data) };
    });
    const host = await openRemoteHost(target(), { programVersion: VERSION });
    await withHost(host, async () => {
      const storage = new SshStorage(host.session);
      const results = await Promise.all(
        files.map(async (file) => crc32c(await storage.readFile(file.path))),
      );
      expect(results).toEqual(files.map((file) => file.crc));
      expect(sshd.connectionPids()).toHaveLength(1);
      const stats = await host.agentStats();
      expect(stats.fileBytesRead).toBeGreaterThanOrEqual(8 * 3 * 1024 * 1024);
      expect(host.traffic().bytesReceived).toBeGreaterThanOrEqual(stats.fileBytesRead);
    });
  });
});

describe('host keys', () => {
  it('refuses an unknown host unless accept-new, which records it', async () => {
    const knownHosts = join(scratch, 'empty_known_hosts');
    const message = await refusal(
      openRemoteHost(target({ knownHosts }), { programVersion: VERSION }),
    );
    expect(message).toContain(`"127.0.0.1" port ${sshd.port} is not a known host`);
    expect(message).toContain(fingerprintOf(`${sshd.hostKeyPath}.pub`));
    expect(message).toContain('StrictHostKeyChecking=accept-new');
    expect(existsSync(knownHosts)).toBe(false);

    const accepted = await openRemoteHost(
      target({ knownHosts, extra: '-o StrictHostKeyChecking=accept-new' }),
      { programVersion: VERSION },
    );
    await withHost(accepted, async (host) => expect(host.hostKey.status).toBe('unknown'));
    expect(
      execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', knownHosts]).toString(),
    ).toContain('found: line 1');
    const again = await openRemoteHost(target({ knownHosts }), { programVersion: VERSION });
    await withHost(again, async (host) => expect(host.hostKey.status).toBe('known'));
  });

  it('asks the caller on first contact with StrictHostKeyChecking=ask, showing the fingerprint', async () => {
    const knownHosts = join(scratch, 'ask_known_hosts');
    const asked: UnknownHostKey[] = [];
    const message = await refusal(
      openRemoteHost(target({ knownHosts, extra: '-o StrictHostKeyChecking=ask' }), {
        programVersion: VERSION,
        hooks: { confirmHostKey: async (check) => (asked.push(check), false) },
      }),
    );
    expect(message).toContain('was not accepted');
    expect(
      asked.map((check) => [check.host, check.port, check.keyType, check.fingerprint]),
    ).toEqual([['127.0.0.1', sshd.port, 'ssh-ed25519', fingerprintOf(`${sshd.hostKeyPath}.pub`)]]);
    const trusted = await openRemoteHost(
      target({ knownHosts, extra: '-o StrictHostKeyChecking=ask' }),
      {
        programVersion: VERSION,
        hooks: { confirmHostKey: async () => true },
      },
    );
    await trusted.close();
    expect(readFileSync(knownHosts, 'utf8')).toContain(`[127.0.0.1]:${sshd.port} ssh-ed25519 `);
  });

  it('always refuses a changed host key, naming the host and both fingerprints', async () => {
    const oldKnownHosts = join(scratch, 'old_known_hosts');
    copyFileSync(sshd.knownHostsPath, oldKnownHosts);
    const oldFingerprint = fingerprintOf(`${sshd.hostKeyPath}.pub`);
    await sshd.rotateHostKey();
    const newFingerprint = fingerprintOf(`${sshd.hostKeyPath}.pub`);
    expect(newFingerprint).not.toBe(oldFingerprint);
    for (const policy of ['yes', 'accept-new', 'no']) {
      const message = await refusal(
        openRemoteHost(
          target({ knownHosts: oldKnownHosts, extra: `-o StrictHostKeyChecking=${policy}` }),
          { programVersion: VERSION },
        ),
      );
      expect(message).toContain(`host key of "127.0.0.1" port ${sshd.port} has CHANGED`);
      expect(message).toContain(`It presented ${newFingerprint}`);
      expect(message).toContain(`known_hosts has ${oldFingerprint} (${oldKnownHosts}:1)`);
    }
    expect(readFileSync(oldKnownHosts, 'utf8')).toBe(readFileSync(oldKnownHosts, 'utf8'));
  });
});

describe('authentication', () => {
  it('uses an encrypted key with its passphrase, and says why it could not without', async () => {
    const extra = `-i ${sshd.encryptedClientKeyPath}`;
    const keyOnly = (): RemoteTarget => ({
      ...target({ extra }),
      identityFiles: [sshd.encryptedClientKeyPath],
    });
    const message = await refusal(openRemoteHost(keyOnly(), { programVersion: VERSION }));
    expect(message).toContain(
      `Permission denied (publickey) for ${sshd.user}@127.0.0.1:${sshd.port}`,
    );
    expect(message).toContain(
      `${sshd.encryptedClientKeyPath} is encrypted and no passphrase was given`,
    );
    const asked: string[] = [];
    const host = await openRemoteHost(keyOnly(), {
      programVersion: VERSION,
      hooks: { passphrase: async (path) => (asked.push(path), PASSPHRASE) },
    });
    await host.close();
    expect(asked).toEqual([sshd.encryptedClientKeyPath]);
  });

  it('authenticates through ssh-agent', async () => {
    const socket = join(scratch, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(socket); i++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      execFileSync('ssh-add', [sshd.clientKeyPath], {
        env: { ...process.env, SSH_AUTH_SOCK: socket },
        stdio: 'ignore',
      });
      const viaAgent: RemoteTarget = {
        ...target(),
        identityFiles: [join(scratch, 'no-such-key')],
        identitiesOnly: false,
        agentSocket: socket,
      };
      const host = await openRemoteHost(viaAgent, { programVersion: VERSION });
      await withHost(host, async () =>
        expect(await host.session.request('realPath', { path: scratch })).toEqual({
          path: scratch,
        }),
      );
    } finally {
      agent.kill();
    }
  });
});

describe('the remote Node.js', () => {
  it('is required, with a clear message when missing', async () => {
    const message = await refusal(
      openRemoteHost(target({ remotePath: join(scratch, 'no-node-here') }), {
        programVersion: VERSION,
      }),
    );
    expect(message).toContain(`Node.js was not found on ${sshd.user}@127.0.0.1:${sshd.port}`);
    expect(message).toContain('--remote-path');
  });

  it('must be version 20 or newer', async () => {
    const oldNode = join(scratch, 'old-node');
    mkdirSync(oldNode, { recursive: true });
    // What the installer of an old Node prints first: its version, then it stops.
    writeFileSync(join(oldNode, 'node'), '#!/bin/sh\necho \'{"node":"18.19.1"}\'\n');
    chmodSync(join(oldNode, 'node'), 0o755);
    const message = await refusal(
      openRemoteHost(target({ remotePath: oldNode }), { programVersion: VERSION }),
    );
    expect(message).toContain('runs Node.js 18.19.1');
    expect(message).toContain('needs Node.js 20 or newer');
  });
});

describe('a dropped connection', () => {
  it('fails what is in flight with a message naming the host', async () => {
    const path = join(scratch, 'large');
    writeFileSync(path, Buffer.alloc(256 * 1024 * 1024, 3));
    const host = await openRemoteHost(target(), { programVersion: VERSION });
    await withHost(host, async () => {
      const storage = new SshStorage(host.session);
      const reading = storage.readFile(path).then(
        () => 'finished',
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(sshd.killConnections()).toBe(1);
      const error = await reading;
      expect(isStrataError(error)).toBe(true);
      expect((error as Error).message).toContain(
        `Lost the connection to the Strata agent on ${sshd.user}@127.0.0.1:${sshd.port}`,
      );
      expect(await refusal(storage.stat(path))).toBe((error as Error).message);
    });
    rmSync(path);
  });

  it('fails when the agent is killed', async () => {
    const host = await openRemoteHost(target(), { programVersion: VERSION });
    await withHost(host, async () => {
      const storage = new SshStorage(host.session);
      expect(sshd.killAgents()).toBe(1);
      const message = await refusal(storage.readDir(scratch));
      expect(message).toMatch(
        /Lost the connection to the Strata agent on .*: the agent was killed by signal (KILL|SIGKILL)/,
      );
    });
  });
});
