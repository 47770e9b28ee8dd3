import type { Logger } from '../../log.js';
import {
  openRemoteHost,
  type OpenRemoteHostOptions,
  type RemoteHost,
} from '../../remote/remoteHost.js';
import type { RemoteTarget } from '../../remote/remoteOptions.js';
import type { Storage } from '../storage.js';
import { SplitStorage } from './splitStorage.js';
import { SshStorage } from './sshStorage.js';

/** A remote host's files as a Storage, with the connection that serves them. */
export interface RemoteStorageConnection {
  storage: SshStorage;
  host: RemoteHost;
  /** Ends the agent and the SSH connection; the storage fails every call afterwards. */
  close(): Promise<void>;
}

/**
 * Opens the Storage of a remote host: connects over SSH (host key checked, see
 * core/remote/README.md), starts the agent there and wraps it. What the desktop app's remote
 * catalog and restore targets use; commands use `withRemoteStorage`.
 */
export async function openRemoteStorage(
  target: RemoteTarget,
  options: OpenRemoteHostOptions,
): Promise<RemoteStorageConnection> {
  const host = await openRemoteHost(target, options);
  return { storage: new SshStorage(host.session), host, close: () => host.close() };
}

/**
 * Which paths of a remote command are on which host: `roots` are on this host and everything else
 * on the remote one (`rootsAre: 'local'`: backup, restore, add-instance and checkdb keep the
 * catalog here, catchup its destination), or the reverse (`'remote'`: archive-push and
 * archive-get reach the catalog on the backup host).
 */
export interface RemoteCommandLayout {
  roots: string[];
  rootsAre: 'local' | 'remote';
}

/**
 * Runs `run` with a Storage that reaches the remote host for the paths `layout` puts there, then
 * closes the connection, reporting (LOG level) the bytes that crossed it.
 */
export async function withRemoteStorage<T>(
  local: Storage,
  target: RemoteTarget,
  layout: RemoteCommandLayout,
  options: OpenRemoteHostOptions & { logger?: Logger },
  run: (storage: Storage, host: RemoteHost) => Promise<T>,
): Promise<T> {
  const connection = await openRemoteStorage(target, options);
  const { storage: remote, host } = connection;
  const storage =
    layout.rootsAre === 'local'
      ? new SplitStorage({ roots: layout.roots, inside: local, outside: remote })
      : new SplitStorage({ roots: layout.roots, inside: remote, outside: local });
  try {
    return await run(storage, host);
  } finally {
    if (options.logger && !host.session.failed) {
      const agent = await host.agentStats().catch(() => undefined);
      const traffic = host.traffic();
      options.logger.log(
        'LOG',
        `Remote ${remote.description}: ${traffic.bytesSent} bytes sent and ${traffic.bytesReceived} bytes received over SSH` +
          (agent
            ? `; the agent read ${agent.fileBytesRead} and wrote ${agent.fileBytesWritten} bytes of files`
            : ''),
      );
    }
    await connection.close();
  }
}
