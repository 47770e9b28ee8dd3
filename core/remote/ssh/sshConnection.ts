import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AnyAuthMethod, AuthenticationType, Client, ClientChannel, ConnectConfig } from 'ssh2';
import { StrataError, errorText } from '../../errors.js';
import { describeTarget, type RemoteTarget } from '../remoteOptions.js';
import {
  checkHostKey,
  hostKeyRefusal,
  knownHostsLine,
  knownKeyTypes,
  type HostKeyCheck,
  type KnownHostsFile,
} from './knownHosts.js';

/** A first-contact check: what a UI shows before the user trusts a host. */
export type UnknownHostKey = Extract<HostKeyCheck, { status: 'unknown' }>;

/** What the caller supplies for decisions the connection cannot take alone. */
export interface SshHooks {
  /**
   * StrictHostKeyChecking=ask: shown the new host's key type and fingerprint, answers whether to
   * trust it (it is then recorded in the user known_hosts file). Without it, `ask` refuses.
   */
  confirmHostKey?: (check: UnknownHostKey) => Promise<boolean>;
  /** The passphrase of an encrypted private key; undefined skips that key. */
  passphrase?: (keyPath: string) => Promise<string | undefined>;
  /** Every host-key check made (the desktop app shows the fingerprint of the host it reached). */
  onHostKey?: (check: HostKeyCheck) => void;
  /** Progress notes (which key was tried, a host recorded in known_hosts). */
  log?: (message: string) => void;
}

/** An authenticated SSH connection. */
export interface SshConnection {
  readonly client: Client;
  readonly target: RemoteTarget;
  readonly hostKey: HostKeyCheck;
  /** Runs `command` with the login shell of the remote user; the channel is the command's stdio. */
  exec(command: string): Promise<ClientChannel>;
  /** Registers a callback for the connection's end (error text, or 'closed'). */
  onClose(callback: (reason: string) => void): void;
  close(): void;
}

/** ssh2's host key algorithms in its default order; the ones known_hosts holds for the host go first. */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** The signature algorithms that prove a key of each known_hosts key type. */
function algorithmsForKeyType(keyType: string): string[] {
  return keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType];
}

async function readKnownHosts(paths: string[]): Promise<KnownHostsFile[]> {
  return Promise.all(
    paths.map(async (path) => ({
      path,
      content: await readFile(path, 'utf8').catch(() => undefined),
    })),
  );
}

async function recordHost(
  target: RemoteTarget,
  keyBlob: Buffer,
  log: (message: string) => void,
): Promise<void> {
  const path = target.userKnownHostsFiles[0];
  if (!path) return;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const existing = await readFile(path, 'utf8').catch(() => '');
  const separator = existing === '' || existing.endsWith('\n') ? '' : '\n';
  await appendFile(
    path,
    `${separator}${knownHostsLine(target.host, target.port, keyBlob, target.hashKnownHosts)}\n`,
    { mode: 0o600 },
  );
  log(`Permanently added '${target.host}' (${target.port}) to the list of known hosts in ${path}`);
}

interface KeyAttempt {
  method: AnyAuthMethod;
  label: string;
}

/** ssh2's parser answers an encrypted key without its passphrase with this error text. */
function isEncryptedKeyError(error: Error): boolean {
  return /encrypted|passphrase/i.test(error.message);
}

/**
 * Connects and authenticates: ssh-agent first (unless IdentitiesOnly), then each private key file
 * (asking `hooks.passphrase` for encrypted ones); the server's host key is checked against
 * known_hosts before anything is sent (`hostKeyPolicy`, a changed key always refused).
 */
export async function connectSsh(
  target: RemoteTarget,
  hooks: SshHooks = {},
): Promise<SshConnection> {
  const { Client: SshClient, utils } = (await import('ssh2')).default;
  const log = hooks.log ?? (() => undefined);
  const description = describeTarget(target);
  const knownFiles = await readKnownHosts([
    ...target.userKnownHostsFiles,
    ...target.globalKnownHostsFiles,
  ]);
  const knownTypes = knownKeyTypes(knownFiles, target.host, target.port);
  const preferred = knownTypes
    .flatMap(algorithmsForKeyType)
    .filter((name) => HOST_KEY_ALGORITHMS.includes(name));
  const serverHostKey = [...new Set([...preferred, ...HOST_KEY_ALGORITHMS])];

  const notes: string[] = [];
  const attempts: KeyAttempt[] = [];
  if (target.agentSocket && !target.identitiesOnly) {
    attempts.push({
      method: { type: 'agent', username: target.user, agent: target.agentSocket },
      label: `ssh-agent (${target.agentSocket})`,
    });
  }
  const keyFiles = target.identityFiles;
  let keyIndex = 0;
  /** The next private key that can be used, parsed (and decrypted) when it is reached. */
  const nextKeyAttempt = async (): Promise<KeyAttempt | undefined> => {
    while (keyIndex < keyFiles.length) {
      const path = keyFiles[keyIndex++]!;
      const data = await readFile(path).catch(() => undefined);
      if (data === undefined) continue;
      let parsed = utils.parseKey(data);
      let passphrase: string | undefined;
      if (parsed instanceof Error && isEncryptedKeyError(parsed)) {
        passphrase = target.batchMode ? undefined : await hooks.passphrase?.(path);
        if (passphrase === undefined) {
          notes.push(
            `${path} is encrypted and no passphrase was given (set STRATA_SSH_PASSPHRASE, or load the key into ssh-agent)`,
          );
          continue;
        }
        parsed = utils.parseKey(data, passphrase);
      }
      if (parsed instanceof Error) {
        notes.push(`${path}: ${parsed.message}`);
        continue;
      }
      return {
        method: {
          type: 'publickey',
          username: target.user,
          key: data,
          ...(passphrase !== undefined ? { passphrase } : {}),
        },
        label: path,
      };
    }
    return undefined;
  };

  const client = new SshClient();
  let hostKey: HostKeyCheck | undefined;
  let refusal: string | undefined;
  const tried: string[] = [];

  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    readyTimeout: target.connectTimeoutMs,
    keepaliveInterval: target.keepaliveIntervalMs,
    keepaliveCountMax: target.keepaliveCountMax,
    algorithms: {
      serverHostKey: serverHostKey as NonNullable<ConnectConfig['algorithms']>['serverHostKey'],
    },
    hostVerifier: (keyBlob: Buffer, verify: (valid: boolean) => void) => {
      void (async () => {
        const check = checkHostKey(knownFiles, target.host, target.port, keyBlob);
        hostKey = check;
        hooks.onHostKey?.(check);
        if (check.status === 'known') return true;
        const userFile = target.userKnownHostsFiles[0] ?? '~/.ssh/known_hosts';
        if (check.status === 'changed' || check.status === 'revoked') {
          refusal = hostKeyRefusal(check, userFile);
          return false;
        }
        let trusted = target.hostKeyPolicy === 'accept-new' || target.hostKeyPolicy === 'no';
        if (target.hostKeyPolicy === 'ask' && hooks.confirmHostKey && !target.batchMode) {
          trusted = await hooks.confirmHostKey(check);
          if (!trusted) {
            refusal = `Host key verification failed: the ${check.keyType} key ${check.fingerprint} of "${check.host}" was not accepted`;
            return false;
          }
        }
        if (!trusted) {
          refusal = hostKeyRefusal(check, userFile);
          return false;
        }
        await recordHost(target, keyBlob, log);
        return true;
      })().then(verify, (error: unknown) => {
        refusal = `Host key verification failed for ${description}: ${errorText(error)}`;
        verify(false);
      });
    },
    authHandler: (methodsLeft: AuthenticationType[] | null, _partial: boolean | null, next) => {
      void (async () => {
        const allowsPublicKey = methodsLeft === null || methodsLeft.includes('publickey');
        if (allowsPublicKey) {
          const attempt = attempts.shift() ?? (await nextKeyAttempt());
          if (attempt) {
            tried.push(attempt.label);
            log(`Trying SSH authentication with ${attempt.label}`);
            next(attempt.method);
            return;
          }
        }
        // ssh2 ends authentication when handed `false` (its documented authHandler contract).
        (next as unknown as (method: false) => void)(false);
      })();
    },
  };

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error & { level?: string }) => {
      client.off('ready', onReady);
      client.end();
      if (refusal) {
        reject(new StrataError('io', refusal));
      } else if (error.level === 'client-authentication') {
        const triedText = tried.length ? `tried ${tried.join(', ')}` : 'no usable key was found';
        const noteText = notes.length ? `; ${notes.join('; ')}` : '';
        reject(
          new StrataError(
            'io',
            `Permission denied (publickey) for ${description}: ${triedText}${noteText}. ` +
              `Add your public key to ~${target.user}/.ssh/authorized_keys on ${target.host}, give a key with --ssh-options="-i <file>", or start ssh-agent`,
          ),
        );
      } else if (error.level === 'client-timeout') {
        reject(
          new StrataError(
            'io',
            `Cannot connect to ${description}: no SSH handshake within ${target.connectTimeoutMs / 1000} s`,
          ),
        );
      } else {
        reject(new StrataError('io', `Cannot connect to ${description}: ${error.message}`));
      }
    };
    const onReady = () => {
      client.off('error', onError);
      // Requests and answers are small packets in both directions: Nagle's algorithm would hold
      // each one back waiting for the peer's delayed ACK.
      client.setNoDelay(true);
      resolve();
    };
    client.once('error', onError);
    client.once('ready', onReady);
    client.connect(config);
  });

  const closeCallbacks: Array<(reason: string) => void> = [];
  let closeReason: string | undefined;
  const closed = (reason: string) => {
    if (closeReason !== undefined) return;
    closeReason = reason;
    for (const callback of closeCallbacks) callback(reason);
  };
  client.on('error', (error: Error) => closed(`SSH connection error: ${error.message}`));
  client.on('close', () => closed('the SSH connection was closed'));

  return {
    client,
    target,
    hostKey: hostKey!,
    exec: (command) =>
      new Promise<ClientChannel>((resolve, reject) => {
        if (closeReason !== undefined) {
          reject(new StrataError('io', `Cannot run a command on ${description}: ${closeReason}`));
          return;
        }
        client.exec(command, (error, channel) => {
          if (error)
            reject(
              new StrataError('io', `Cannot run a command on ${description}: ${error.message}`),
            );
          else resolve(channel);
        });
      }),
    onClose(callback) {
      if (closeReason !== undefined) callback(closeReason);
      else closeCallbacks.push(callback);
    },
    close() {
      client.end();
    },
  };
}
