import { createHash, createHmac, randomBytes } from 'node:crypto';

/**
 * Host-key verification against OpenSSH known_hosts files (sshd(8), "SSH_KNOWN_HOSTS FILE
 * FORMAT"): `[marker] patterns keytype base64-key [comment]`, patterns separated by commas with
 * `*` / `?` wildcards and `!` negation, `[host]:port` for a port other than 22, hashed names
 * `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, markers `@revoked` and `@cert-authority`
 * (certificates are not used by Strata, so those lines are ignored).
 */

export interface KnownHostsFile {
  path: string;
  /** File content; undefined when the file does not exist. */
  content: string | undefined;
}

export interface KnownKeyLocation {
  path: string;
  line: number;
  keyType: string;
  fingerprint: string;
}

interface HostKeyFacts {
  /** The host as given (`127.0.0.1`, `db1.example.com`). */
  host: string;
  port: number;
  /** The name looked up in known_hosts: `host`, or `[host]:port` when port is not 22. */
  knownHostsName: string;
  keyType: string;
  /** OpenSSH's fingerprint form: `SHA256:` and unpadded base64 of the key blob's SHA-256. */
  fingerprint: string;
}

/**
 * The outcome of checking a server's host key. `unknown` is the first-contact case a UI asks the
 * user about (show `fingerprint`); `changed` and `revoked` are always refused.
 */
export type HostKeyCheck =
  | (HostKeyFacts & { status: 'known'; matched: KnownKeyLocation })
  | (HostKeyFacts & { status: 'unknown'; otherKeyTypes: KnownKeyLocation[] })
  | (HostKeyFacts & { status: 'changed'; knownKeys: KnownKeyLocation[] })
  | (HostKeyFacts & { status: 'revoked'; matched: KnownKeyLocation });

export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (RFC 4253 §6.6: string "ssh-ed25519", …). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) throw new Error('host key blob is too short');
  const length = keyBlob.readUInt32BE(0);
  if (length > keyBlob.length - 4) throw new Error('host key blob is malformed');
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

/** The name a host has in known_hosts (OpenSSH's put_host_port). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function wildcardMatch(pattern: string, name: string): boolean {
  let regex = '^';
  for (const char of pattern) {
    if (char === '*') regex += '.*';
    else if (char === '?') regex += '.';
    else regex += char.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`${regex}$`, 'i').test(name);
}

function hashedMatch(pattern: string, name: string): boolean {
  const parts = pattern.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const expected = Buffer.from(parts[3]!, 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return actual.equals(expected);
}

/** OpenSSH's match_hostname: any positive match and no negated one. */
function hostPatternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|')) return hashedMatch(patterns, name);
  let matched = false;
  for (const raw of patterns.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (!wildcardMatch(pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

interface KnownHostsLine {
  marker: '@revoked' | '@cert-authority' | undefined;
  patterns: string;
  keyType: string;
  keyBlob: Buffer;
  line: number;
}

function parseLines(content: string): KnownHostsLine[] {
  const result: KnownHostsLine[] = [];
  content.split('\n').forEach((text, index) => {
    const trimmed = text.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    let marker: KnownHostsLine['marker'];
    if (fields[0]!.startsWith('@')) {
      const name = fields.shift()!;
      if (name !== '@revoked' && name !== '@cert-authority') return;
      marker = name;
    }
    if (fields.length < 3) return;
    const keyBlob = Buffer.from(fields[2]!, 'base64');
    if (keyBlob.length === 0) return;
    result.push({ marker, patterns: fields[0]!, keyType: fields[1]!, keyBlob, line: index + 1 });
  });
  return result;
}

/** The key types known for `host` in `files`, so the client can prefer them in negotiation. */
export function knownKeyTypes(files: KnownHostsFile[], host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  const types = new Set<string>();
  for (const file of files) {
    for (const entry of parseLines(file.content ?? '')) {
      if (entry.marker === undefined && hostPatternsMatch(entry.patterns, name))
        types.add(entry.keyType);
    }
  }
  return [...types];
}

/** Checks the key a server presented against every known_hosts file, user file first. */
export function checkHostKey(
  files: KnownHostsFile[],
  host: string,
  port: number,
  keyBlob: Buffer,
): HostKeyCheck {
  const name = knownHostsName(host, port);
  const keyType = keyTypeOf(keyBlob);
  const facts: HostKeyFacts = {
    host,
    port,
    knownHostsName: name,
    keyType,
    fingerprint: sshFingerprint(keyBlob),
  };
  let matched: KnownKeyLocation | undefined;
  const sameType: KnownKeyLocation[] = [];
  const otherTypes: KnownKeyLocation[] = [];
  for (const file of files) {
    for (const entry of parseLines(file.content ?? '')) {
      const location: KnownKeyLocation = {
        path: file.path,
        line: entry.line,
        keyType: entry.keyType,
        fingerprint: sshFingerprint(entry.keyBlob),
      };
      if (entry.marker === '@revoked') {
        if (entry.keyBlob.equals(keyBlob))
          return { ...facts, status: 'revoked', matched: location };
        continue;
      }
      if (entry.marker !== undefined || !hostPatternsMatch(entry.patterns, name)) continue;
      if (entry.keyBlob.equals(keyBlob)) matched ??= location;
      else if (entry.keyType === keyType) sameType.push(location);
      else otherTypes.push(location);
    }
  }
  if (matched) return { ...facts, status: 'known', matched };
  if (sameType.length > 0) return { ...facts, status: 'changed', knownKeys: sameType };
  return { ...facts, status: 'unknown', otherKeyTypes: otherTypes };
}

/**
 * The line `accept-new` appends for a new host: the name hashed as OpenSSH's HashKnownHosts
 * writes it when `hashed`, otherwise in clear.
 */
export function knownHostsLine(
  host: string,
  port: number,
  keyBlob: Buffer,
  hashed = false,
): string {
  let name = knownHostsName(host, port);
  if (hashed) {
    const salt = randomBytes(20);
    name = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
  }
  return `${name} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}`;
}

/** The one message for a refused host key: names the host, the file, and both fingerprints. */
export function hostKeyRefusal(check: HostKeyCheck, userKnownHostsFile: string): string {
  const where = check.port === 22 ? `"${check.host}"` : `"${check.host}" port ${check.port}`;
  switch (check.status) {
    case 'changed': {
      const known = check.knownKeys
        .map((key) => `${key.fingerprint} (${key.path}:${key.line})`)
        .join(', ');
      return (
        `Host key verification failed: the ${check.keyType} host key of ${where} has CHANGED. ` +
        `It presented ${check.fingerprint}, but known_hosts has ${known}. ` +
        'Someone could be intercepting the connection, or the host was reinstalled; if you know it was, remove the old key ' +
        `(ssh-keygen -R '${check.knownHostsName}' -f ${userKnownHostsFile}) and connect again`
      );
    }
    case 'revoked':
      return `Host key verification failed: the ${check.keyType} host key ${check.fingerprint} of ${where} is marked @revoked in ${check.matched.path}:${check.matched.line}`;
    case 'unknown': {
      const others = check.otherKeyTypes.length
        ? ` (known_hosts has only ${[...new Set(check.otherKeyTypes.map((key) => key.keyType))].join(', ')} keys for it)`
        : '';
      return (
        `Host key verification failed: ${where} is not a known host${others}; it presented the ${check.keyType} key ${check.fingerprint}. ` +
        `Check the fingerprint, then add the host to ${userKnownHostsFile} (ssh-keyscan, or one ssh login) or accept it on first contact with ` +
        `--ssh-options="-o StrictHostKeyChecking=accept-new"`
      );
    }
    case 'known':
      return `The host key of ${where} is known`;
  }
}
