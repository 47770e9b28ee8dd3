import { formatCatalogLocation, remoteLocationParts } from '../../../core/api/catalogLocation.js';
import type {
  InstanceSummary,
  RemoteHostInfo,
  RemoteHostRequest,
} from '../../../core/api/contract.js';

/**
 * The SSH hosts the app is connected to, as the UI handles them: the connection form's fields
 * (pg_probackup's `--remote-*` and `--ssh-options`), `ssh://` catalog locations, and which
 * connected host an instance's pg_probackup.conf (`remote-host`, `remote-port`, `remote-user`)
 * means. Pure functions, no API calls.
 */

/** OpenSSH's port, which pg_probackup's `--remote-port` also defaults to. */
export const SSH_DEFAULT_PORT = 22;
/** TCP ports are 16-bit; 0 is not a port a server listens on. */
const MAX_PORT = 65535;

export interface HostForm {
  host: string;
  /** As typed: empty means 22. */
  port: string;
  /** Empty means the local user name, as for ssh. */
  user: string;
  remotePath: string;
  sshOptions: string;
}

export type InstanceRemote = NonNullable<InstanceSummary['remote']>;

export function emptyHostForm(): HostForm {
  return { host: '', port: String(SSH_DEFAULT_PORT), user: '', remotePath: '', sshOptions: '' };
}

/** What keeps the form from connecting, in plain words; null when it can connect. */
export function hostFormProblem(form: HostForm): string | null {
  const host = form.host.trim();
  if (host === '') return 'Type the host name or address (pg_probackup’s --remote-host).';
  if (/[\s/@]/.test(host)) return `"${host}" is not a host name or address.`;
  const port = form.port.trim();
  if (port !== '' && !(/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= MAX_PORT)) {
    return `The port is a number from 1 to ${MAX_PORT} (--remote-port), not "${port}".`;
  }
  if (/[\s@]/.test(form.user.trim())) return `"${form.user.trim()}" is not a user name.`;
  return null;
}

/** The request the form makes: only the fields that were typed. */
export function hostRequestOf(form: HostForm): RemoteHostRequest {
  const request: RemoteHostRequest = { host: form.host.trim() };
  const port = form.port.trim();
  if (port !== '') request.port = Number(port);
  if (form.user.trim() !== '') request.user = form.user.trim();
  if (form.remotePath.trim() !== '') request.remotePath = form.remotePath.trim();
  if (form.sshOptions.trim() !== '') request.sshOptions = form.sshOptions.trim();
  return request;
}

/** The request that connects a listed host again, with the options it was connected with. */
export function reconnectRequestOf(host: RemoteHostInfo): RemoteHostRequest {
  const request: RemoteHostRequest = { host: host.host, port: host.port, user: host.user };
  if (host.remotePath) request.remotePath = host.remotePath;
  if (host.sshOptions) request.sshOptions = host.sshOptions;
  return request;
}

export function hostFormOf(host: RemoteHostInfo): HostForm {
  return {
    host: host.host,
    port: String(host.port),
    user: host.user,
    remotePath: host.remotePath ?? '',
    sshOptions: host.sshOptions ?? '',
  };
}

/** The location `openCatalog` takes: a path here, or `ssh://<host id><path>` on a connected host. */
export function catalogLocation(hostId: string | null, path: string): string {
  return formatCatalogLocation({ hostId: hostId ?? undefined, path: path.trim() });
}

/**
 * A location split for the open-catalog form: the connected host it names and its path there,
 * or no host and the location as it is (a local path, or an `ssh://` one whose host is not
 * connected, which opening then reports).
 */
export function splitCatalogLocation(
  location: string,
  hosts: RemoteHostInfo[],
): { hostId: string | null; path: string } {
  const parsed = remoteLocationParts(location);
  if (parsed && hosts.some((host) => host.connected && host.id === parsed.hostId)) {
    return { hostId: parsed.hostId, path: parsed.path };
  }
  return { hostId: null, path: location };
}

/** `user@host:port` of a pg_probackup.conf, or `host:port` when it names no user. */
export function remoteLabel(remote: InstanceRemote): string {
  return `${remote.user === null ? '' : `${remote.user}@`}${remote.host}:${remote.port}`;
}

/**
 * The connected host an instance's pg_probackup.conf names: same host and port, and the same
 * user when the configuration names one (otherwise ssh's default user, whichever it was).
 */
export function hostMatchingRemote(
  hosts: RemoteHostInfo[],
  remote: InstanceRemote | null,
): RemoteHostInfo | null {
  if (remote === null) return null;
  return (
    hosts.find(
      (host) =>
        host.connected &&
        host.host === remote.host &&
        host.port === remote.port &&
        (remote.user === null || host.user === remote.user),
    ) ?? null
  );
}

/**
 * The name OpenSSH gives a host key file of this type (`/etc/ssh/ssh_host_<name>_key.pub`): one
 * file per algorithm family, whatever signature variant (rsa-sha2-512, ecdsa-sha2-nistp384) the
 * server used.
 */
export function hostKeyFileType(keyType: string): string {
  if (keyType.includes('ed25519')) return 'ed25519';
  if (keyType.startsWith('ecdsa-')) return 'ecdsa';
  if (keyType === 'ssh-dss') return 'dsa';
  if (keyType === 'ssh-rsa' || keyType.startsWith('rsa-')) return 'rsa';
  return keyType.replace(/^ssh-/, '');
}
