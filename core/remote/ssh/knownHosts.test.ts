import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkHostKey,
  hostKeyRefusal,
  keyTypeOf,
  knownHostsLine,
  knownKeyTypes,
  sshFingerprint,
} from './knownHosts.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-knownhosts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A real key made by ssh-keygen: its public blob and the fingerprint ssh-keygen prints for it. */
function realKey(
  name: string,
  type: 'ed25519' | 'ecdsa' | 'rsa',
): { blob: Buffer; line: string; fingerprint: string } {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', path]);
  const line = readFileSync(`${path}.pub`, 'utf8').trim();
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`])
    .toString()
    .split(' ')[1]!;
  return { blob: Buffer.from(line.split(' ')[1]!, 'base64'), line, fingerprint };
}

const first = realKey('first', 'ed25519');
const second = realKey('second', 'ed25519');
const rsa = realKey('rsa', 'rsa');

describe('known_hosts checks', () => {
  it('computes the fingerprint ssh-keygen prints and reads the key type from the blob', () => {
    expect(sshFingerprint(first.blob)).toBe(first.fingerprint);
    expect(keyTypeOf(first.blob)).toBe('ssh-ed25519');
    expect(keyTypeOf(rsa.blob)).toBe('ssh-rsa');
  });

  it('matches [host]:port names, comma lists, wildcards and negations', () => {
    const key = first.line.split(' ').slice(0, 2).join(' ');
    const file = (content: string) => [{ path: '/kh', content }];
    expect(
      checkHostKey(file(`[127.0.0.1]:2222 ${key}\n`), '127.0.0.1', 2222, first.blob).status,
    ).toBe('known');
    expect(checkHostKey(file(`127.0.0.1 ${key}\n`), '127.0.0.1', 2222, first.blob).status).toBe(
      'unknown',
    );
    expect(
      checkHostKey(file(`db1,db2.example.com ${key}\n`), 'DB2.example.com', 22, first.blob).status,
    ).toBe('known');
    expect(
      checkHostKey(
        file(`*.example.com,!bad.example.com ${key}\n`),
        'db3.example.com',
        22,
        first.blob,
      ).status,
    ).toBe('known');
    expect(
      checkHostKey(
        file(`*.example.com,!bad.example.com ${key}\n`),
        'bad.example.com',
        22,
        first.blob,
      ).status,
    ).toBe('unknown');
    expect(
      checkHostKey(file(`# comment\n\n@cert-authority * ${key}\n`), 'db1', 22, first.blob).status,
    ).toBe('unknown');
  });

  it('matches hashed names as ssh-keygen -H writes them, and writes lines ssh-keygen can find', () => {
    const path = join(dir, 'hashed_known_hosts');
    execFileSync('sh', [
      '-c',
      `printf '%s\\n' '${knownHostsLine('db9.example.com', 2200, first.blob)}' > ${path} && ssh-keygen -q -H -f ${path}`,
    ]);
    const content = readFileSync(path, 'utf8');
    expect(content.startsWith('|1|')).toBe(true);
    expect(checkHostKey([{ path, content }], 'db9.example.com', 2200, first.blob).status).toBe(
      'known',
    );
    expect(checkHostKey([{ path, content }], 'db9.example.com', 22, first.blob).status).toBe(
      'unknown',
    );
    const ours = join(dir, 'ours_hashed');
    execFileSync('sh', [
      '-c',
      `printf '%s\\n' '${knownHostsLine('db9.example.com', 2200, first.blob, true)}' > ${ours}`,
    ]);
    expect(
      execFileSync('ssh-keygen', ['-F', '[db9.example.com]:2200', '-f', ours]).toString(),
    ).toContain('found: line 1');
  });

  it('reports a changed key with both fingerprints, and prefers known key types', () => {
    const content = `[10.0.0.5]:5022 ${first.line}\n[10.0.0.5]:5022 ${rsa.line}\n`;
    const check = checkHostKey(
      [{ path: '/home/dba/.ssh/known_hosts', content }],
      '10.0.0.5',
      5022,
      second.blob,
    );
    expect(check.status).toBe('changed');
    const message = hostKeyRefusal(check, '/home/dba/.ssh/known_hosts');
    expect(message).toContain('"10.0.0.5" port 5022');
    expect(message).toContain('CHANGED');
    expect(message).toContain(second.fingerprint);
    expect(message).toContain(`${first.fingerprint} (/home/dba/.ssh/known_hosts:1)`);
    expect(message).not.toContain(rsa.fingerprint);
    expect(knownKeyTypes([{ path: '/kh', content }], '10.0.0.5', 5022).sort()).toEqual([
      'ssh-ed25519',
      'ssh-rsa',
    ]);
  });

  it('refuses a revoked key even when it is also listed as known', () => {
    const content = `db1 ${first.line}\n@revoked * ${first.line}\n`;
    const check = checkHostKey([{ path: '/kh', content }], 'db1', 22, first.blob);
    expect(check.status).toBe('revoked');
    expect(hostKeyRefusal(check, '/kh')).toContain('@revoked in /kh:2');
  });

  it('says how to accept an unknown host, naming its fingerprint', () => {
    const check = checkHostKey([{ path: '/kh', content: undefined }], 'db1', 22, first.blob);
    expect(check.status).toBe('unknown');
    const message = hostKeyRefusal(check, '/kh');
    expect(message).toContain(`"db1" is not a known host`);
    expect(message).toContain(first.fingerprint);
    expect(message).toContain('StrictHostKeyChecking=accept-new');
  });
});
