import { describe, expect, it } from 'vitest';
import { remoteTarget } from './remoteOptions.js';

const defaults = { homeDir: '/home/dba', username: 'dba', agentSocket: '/tmp/agent.sock' };

describe('remote options', () => {
  it('is remote exactly when remote-host is set and remote-proto is ssh (its default)', () => {
    expect(remoteTarget({}, defaults)).toBeUndefined();
    expect(remoteTarget({ remoteHost: 'db1', remoteProto: 'none' }, defaults)).toBeUndefined();
    expect(remoteTarget({ remoteHost: 'db1' }, defaults)?.host).toBe('db1');
    expect(() => remoteTarget({ remoteHost: 'db1', remoteProto: 'rsh' }, defaults)).toThrow(
      "Invalid value for '--remote-proto' option: 'rsh'",
    );
  });

  it('defaults like OpenSSH: port 22, the local user, ~/.ssh keys and known_hosts, strict host keys', () => {
    const target = remoteTarget({ remoteHost: 'db1' }, defaults)!;
    expect(target).toMatchObject({
      port: 22,
      user: 'dba',
      identityFiles: [
        '/home/dba/.ssh/id_ed25519',
        '/home/dba/.ssh/id_ecdsa',
        '/home/dba/.ssh/id_rsa',
      ],
      agentSocket: '/tmp/agent.sock',
      userKnownHostsFiles: ['/home/dba/.ssh/known_hosts', '/home/dba/.ssh/known_hosts2'],
      hostKeyPolicy: 'yes',
      remotePath: undefined,
    });
    expect(target.keepaliveIntervalMs).toBeGreaterThan(0);
  });

  it('reads --ssh-options split on spaces, the --remote-* options winning', () => {
    const target = remoteTarget(
      {
        remoteHost: 'db1',
        remotePort: '2222',
        remoteUser: 'postgres',
        remotePath: '/opt/node/bin',
        sshOptions:
          '-p 2200 -l other -i ~/keys/db1 -o StrictHostKeyChecking=accept-new -oUserKnownHostsFile=/etc/strata/known_hosts ' +
          '-o ServerAliveInterval=5 -o ServerAliveCountMax=2 -o ConnectTimeout=7 -o IdentitiesOnly=yes -o PasswordAuthentication=no -q',
      },
      defaults,
    )!;
    expect(target).toMatchObject({
      port: 2222,
      user: 'postgres',
      remotePath: '/opt/node/bin',
      identityFiles: ['/home/dba/keys/db1'],
      identitiesOnly: true,
      hostKeyPolicy: 'accept-new',
      userKnownHostsFiles: ['/etc/strata/known_hosts'],
      keepaliveIntervalMs: 5000,
      keepaliveCountMax: 2,
      connectTimeoutMs: 7000,
    });
    expect(
      remoteTarget({ remoteHost: 'db1', sshOptions: '-p 2200 -l other' }, defaults),
    ).toMatchObject({ port: 2200, user: 'other' });
  });

  it('refuses what it cannot honour with a message naming the entry', () => {
    expect(() =>
      remoteTarget({ remoteHost: 'db1', sshOptions: '-L 5432:localhost:5432' }, defaults),
    ).toThrow('Unsupported entry "-L"');
    expect(() =>
      remoteTarget({ remoteHost: 'db1', sshOptions: '-o StrictHostKeyChecking=maybe' }, defaults),
    ).toThrow('StrictHostKeyChecking=maybe');
    expect(() => remoteTarget({ remoteHost: 'db1', remotePort: '70000' }, defaults)).toThrow(
      "'--remote-port' option: '70000'",
    );
    expect(() =>
      remoteTarget({ remoteHost: 'db1', sshConfig: '/etc/ssh/custom' }, defaults),
    ).toThrow('--ssh-config');
    const warnings: string[] = [];
    remoteTarget(
      { remoteHost: 'db1', sshOptions: '-o Compression=no -o Frobnicate=1' },
      { ...defaults, warn: (message) => warnings.push(message) },
    );
    expect(warnings).toEqual([
      "SSH option Compression has no effect on Strata's built-in SSH client",
      'Unknown SSH option Frobnicate in --ssh-options is ignored',
    ]);
  });
});
