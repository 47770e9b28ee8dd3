import { userInfo } from 'node:os';
import { StrataError, errorText } from '../errors.js';
import {
  remoteTarget,
  type RemoteOptionFields,
  type RemoteTarget,
  type RemoteTargetDefaults,
} from '../remote/remoteOptions.js';
import type { UnknownHostKey } from '../remote/ssh/sshConnection.js';
import {
  openRemoteStorage,
  type RemoteStorageConnection,
} from '../storage/ssh/openRemoteStorage.js';
import type { Storage } from '../storage/storage.js';
import { remoteHostId } from './catalogLocation.js';
import type {
  ConnectHostRequest,
  ConnectHostResult,
  RemoteHostInfo,
  RemoteHostRequest,
} from './contract.js';

export interface RemoteHostsOptions {
  /** Strata's version: names the agent file copied to each host. */
  programVersion: string;
  /** Home directory (known_hosts, default keys), user name and ssh-agent socket of this side. */
  sshDefaults?: RemoteTargetDefaults;
  /** The agent bundle to copy; dist/strata-agent.mjs when absent. */
  agentBundlePath?: string;
}

interface ConnectedHost {
  info: Omit<RemoteHostInfo, 'connected' | 'problem' | 'traffic'>;
  connection: RemoteStorageConnection;
}

/** `-o StrictHostKeyChecking=…` given by the DBA wins over the app's first-contact dialog. */
const EXPLICIT_HOST_KEY_POLICY = /stricthostkeychecking/i;

/**
 * The SSH hosts the desktop app is connected to: one connection and one agent per host, shared by
 * every catalog read and job that names it (`ssh://` catalog locations, restore destinations,
 * backups of instances whose pg_probackup.conf names the host). Host keys are checked as the CLI
 * checks them (core/remote/README.md) except that an unknown host is a question for the DBA
 * (`unknown-host-key`) rather than a refusal, and a changed key is always refused.
 */
export class RemoteHosts {
  private readonly hosts = new Map<string, ConnectedHost>();

  constructor(private readonly options: RemoteHostsOptions) {}

  /** The target `request` names; the first-contact policy is `ask` unless the options set one. */
  private target(request: RemoteHostRequest): RemoteTarget {
    const fields: RemoteOptionFields = {
      remoteHost: request.host,
      ...(request.port !== undefined ? { remotePort: String(request.port) } : {}),
      ...(request.user !== undefined ? { remoteUser: request.user } : {}),
      ...(request.remotePath !== undefined ? { remotePath: request.remotePath } : {}),
      ...(request.sshOptions !== undefined ? { sshOptions: request.sshOptions } : {}),
    };
    const target = remoteTarget(fields, this.options.sshDefaults);
    if (!target) throw new StrataError('usage', 'Give the host to connect to');
    if (!EXPLICIT_HOST_KEY_POLICY.test(request.sshOptions ?? '')) target.hostKeyPolicy = 'ask';
    return target;
  }

  async connect(request: ConnectHostRequest): Promise<ConnectHostResult> {
    const target = this.target(request);
    let unknownKey: UnknownHostKey | undefined;
    let lockedKeyFile: string | undefined;
    let connection: RemoteStorageConnection;
    try {
      connection = await openRemoteStorage(target, {
        programVersion: this.options.programVersion,
        ...(this.options.agentBundlePath !== undefined
          ? { agentBundlePath: this.options.agentBundlePath }
          : {}),
        hooks: {
          confirmHostKey: (check) => {
            if (request.trustHostKey === check.fingerprint) return Promise.resolve(true);
            unknownKey = check;
            return Promise.resolve(false);
          },
          passphrase: (keyPath) => {
            if (request.passphrase !== undefined) return Promise.resolve(request.passphrase);
            lockedKeyFile ??= keyPath;
            return Promise.resolve(undefined);
          },
        },
      });
    } catch (error) {
      if (unknownKey) {
        return {
          status: 'unknown-host-key',
          host: unknownKey.host,
          port: unknownKey.port,
          keyType: unknownKey.keyType,
          fingerprint: unknownKey.fingerprint,
          knownHostsFile: target.userKnownHostsFiles[0] ?? null,
        };
      }
      if (lockedKeyFile !== undefined && /Permission denied/.test(errorText(error)))
        return { status: 'passphrase-needed', keyFile: lockedKeyFile };
      throw error;
    }
    const id = remoteHostId(target.user, target.host, target.port);
    const replaced = this.hosts.get(id);
    const hostKey = connection.host.hostKey;
    const info: ConnectedHost['info'] = {
      id,
      host: target.host,
      port: target.port,
      user: target.user,
      remotePath: request.remotePath ?? null,
      sshOptions: request.sshOptions ?? null,
      hostKey: { keyType: hostKey.keyType, fingerprint: hostKey.fingerprint },
      nodeVersion: connection.host.session.hello.nodeVersion,
    };
    this.hosts.set(id, { info, connection });
    await replaced?.connection.close();
    return { status: 'connected', host: this.describe(this.hosts.get(id)!) };
  }

  private describe(host: ConnectedHost): RemoteHostInfo {
    const failure = host.connection.host.session.failed;
    return {
      ...host.info,
      traffic: host.connection.host.traffic(),
      connected: failure === undefined,
      problem: failure?.message ?? null,
    };
  }

  list(): RemoteHostInfo[] {
    return [...this.hosts.values()].map((host) => this.describe(host));
  }

  /** The connection options of a connected host, to name it on an equivalent command line. */
  info(hostId: string): RemoteHostInfo {
    return this.describe(this.require(hostId));
  }

  async disconnect(hostId: string): Promise<void> {
    const host = this.hosts.get(hostId);
    if (!host) return;
    this.hosts.delete(hostId);
    await host.connection.close();
  }

  /** The files of a connected host; StrataError('remote-not-connected') when it is not (any more). */
  storage(hostId: string): Storage {
    const host = this.require(hostId);
    const failure = host.connection.host.session.failed;
    if (failure) {
      throw new StrataError(
        'remote-not-connected',
        `The connection to ${hostId} was lost (${failure.message}): connect to the host again`,
      );
    }
    return host.connection.storage;
  }

  /**
   * The connected host a pg_probackup.conf `remote-host/-port/-user` names, if any. Without
   * remote-user pg_probackup logs in as the local user: that connection first, else the one the
   * DBA made to that host and port as another user (as the app's restore wizard offers it).
   */
  find(remote: { host: string; port: number; user: string | null }): string | undefined {
    const user = remote.user ?? this.options.sshDefaults?.username ?? userInfo().username;
    const id = remoteHostId(user, remote.host, remote.port);
    if (this.hosts.has(id)) return id;
    if (remote.user !== null) return undefined;
    for (const [otherId, { info }] of this.hosts)
      if (info.host === remote.host && info.port === remote.port) return otherId;
    return undefined;
  }

  async closeAll(): Promise<void> {
    const hosts = [...this.hosts.values()];
    this.hosts.clear();
    await Promise.all(hosts.map((host) => host.connection.close()));
  }

  private require(hostId: string): ConnectedHost {
    const host = this.hosts.get(hostId);
    if (!host) {
      throw new StrataError(
        'remote-not-connected',
        `Not connected to ${hostId}: connect to the host first (Catalogs → Hosts in the app)`,
      );
    }
    return host;
  }
}
