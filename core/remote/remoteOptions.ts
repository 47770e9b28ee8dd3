import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { StrataError } from '../errors.js';

/**
 * pg_probackup's remote options (cli-behaviour §2.10), as the command line and pg_probackup.conf
 * give them; field names are InstanceConfig's.
 */
export interface RemoteOptionFields {
  remoteProto?: string | undefined;
  remoteHost?: string | undefined;
  remotePort?: string | undefined;
  remotePath?: string | undefined;
  remoteUser?: string | undefined;
  sshOptions?: string | undefined;
  sshConfig?: string | undefined;
}

/**
 * OpenSSH's StrictHostKeyChecking: `yes` refuses unknown hosts, `accept-new` records them on
 * first contact, `ask` asks the caller's `confirmHostKey` (the desktop app's first-contact
 * dialog), `no` records them too. A changed or revoked key is refused in every mode.
 */
export type HostKeyPolicy = 'yes' | 'accept-new' | 'ask' | 'no';

/** Everything needed to reach one remote host and start the agent there. */
export interface RemoteTarget {
  host: string;
  port: number;
  user: string;
  /** `--remote-path`: the remote directory holding `node` (or the path of the node binary). */
  remotePath: string | undefined;
  /** Private key files tried in order after ssh-agent. */
  identityFiles: string[];
  /** Only the identity files (IdentitiesOnly=yes): ssh-agent is not asked. */
  identitiesOnly: boolean;
  /** ssh-agent socket; undefined when there is none or IdentityAgent=none. */
  agentSocket: string | undefined;
  /** User known_hosts files; new hosts are recorded in the first. Empty disables recording. */
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  hostKeyPolicy: HostKeyPolicy;
  /** HashKnownHosts: record new hosts with their names hashed. */
  hashKnownHosts: boolean;
  /** ServerAliveInterval in ms (0 disables keep-alives) and ServerAliveCountMax. */
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  connectTimeoutMs: number;
  /** BatchMode=yes: never ask for a passphrase or a host-key confirmation. */
  batchMode: boolean;
}

export interface RemoteTargetDefaults {
  homeDir?: string;
  username?: string;
  /** SSH_AUTH_SOCK of this process. */
  agentSocket?: string | undefined;
  /** Receives notes on options accepted but without effect here. */
  warn?: (message: string) => void;
}

/** Keep-alives on by default: a silently dropped connection fails within about 45 s. */
const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
const DEFAULT_KEEPALIVE_COUNT_MAX = 3;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** `-o` options that pg_probackup passes or users commonly set and that have no effect on this client. */
const WITHOUT_EFFECT = new Set([
  'passwordauthentication',
  'compression',
  'controlmaster',
  'controlpath',
  'controlpersist',
  'loglevel',
  'addkeystoagent',
  'forwardagent',
  'forwardx11',
  'checkhostip',
  'visualhostkey',
  'updatehostkeys',
  'tcpkeepalive',
  'requesttty',
  'kbdinteractiveauthentication',
  'challengeresponseauthentication',
  'pubkeyauthentication',
  'preferredauthentications',
  'ciphers',
  'macs',
  'kexalgorithms',
  'hostkeyalgorithms',
]);

function usage(message: string): StrataError {
  return new StrataError('usage', message);
}

function parsePort(text: string, source: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535))
    throw usage(`Invalid value for ${source}: '${text}'; it must be a TCP port from 1 to 65535`);
  return port;
}

function parseSeconds(text: string, key: string): number {
  if (!/^\d+$/.test(text))
    throw usage(
      `Invalid value in --ssh-options: -o ${key}=${text}; it must be a whole number of seconds`,
    );
  return Number(text) * 1000;
}

function yesNo(text: string, key: string): boolean {
  const lowered = text.toLowerCase();
  if (lowered === 'yes' || lowered === 'true') return true;
  if (lowered === 'no' || lowered === 'false') return false;
  throw usage(`Invalid value in --ssh-options: -o ${key}=${text}; use yes or no`);
}

function expandHome(path: string, homeDir: string): string {
  if (path === '~') return homeDir;
  if (path.startsWith('~/')) return join(homeDir, path.slice(2));
  return resolve(path);
}

/**
 * The host to reach, or undefined when remote mode is off: pg_probackup is remote exactly when
 * `remote-host` is set and `remote-proto` is `ssh` (its default). `--ssh-options` is split on
 * spaces like pg_probackup does; this client understands `-o Key=Value` for the options listed in
 * core/remote/README.md, `-i`, `-p`, `-l`, and refuses what it cannot honour.
 */
export function remoteTarget(
  fields: RemoteOptionFields,
  defaults: RemoteTargetDefaults = {},
): RemoteTarget | undefined {
  const proto = (fields.remoteProto ?? 'ssh').toLowerCase();
  if (proto !== 'ssh' && proto !== 'none') {
    throw usage(
      `Invalid value for '--remote-proto' option: '${fields.remoteProto}'; use ssh or none`,
    );
  }
  if (proto === 'none' || !fields.remoteHost) return undefined;
  if (fields.sshConfig) {
    throw usage(
      `--ssh-config (ssh -F) is not supported by Strata's built-in SSH client: give the settings of "${fields.sshConfig}" as --remote-* options and --ssh-options="-o Key=Value"`,
    );
  }
  const homeDir = defaults.homeDir ?? homedir();
  const warn = defaults.warn ?? (() => undefined);
  const sshDir = join(homeDir, '.ssh');
  let port: number | undefined;
  let optionPort: number | undefined;
  let user: string | undefined;
  let optionUser: string | undefined;
  const identityFiles: string[] = [];
  let identitiesOnly = false;
  let agentSocket = defaults.agentSocket ?? process.env['SSH_AUTH_SOCK'];
  let userKnownHostsFiles = [join(sshDir, 'known_hosts'), join(sshDir, 'known_hosts2')];
  let globalKnownHostsFiles = ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'];
  let hostKeyPolicy: HostKeyPolicy | undefined;
  let hashKnownHosts = false;
  let keepaliveIntervalMs: number | undefined;
  let keepaliveCountMax: number | undefined;
  let connectTimeoutMs: number | undefined;
  let batchMode = false;

  const setOption = (assignment: string) => {
    const eq = assignment.indexOf('=');
    if (eq <= 0)
      throw usage(`Invalid --ssh-options entry "-o ${assignment}": write it as -o Key=Value`);
    const key = assignment.slice(0, eq);
    const value = assignment.slice(eq + 1);
    switch (key.toLowerCase()) {
      case 'stricthostkeychecking': {
        const lowered = value.toLowerCase();
        if (lowered === 'yes' || lowered === 'accept-new' || lowered === 'ask' || lowered === 'no')
          hostKeyPolicy ??= lowered;
        else if (lowered === 'off') hostKeyPolicy ??= 'no';
        else
          throw usage(
            `Invalid value in --ssh-options: -o StrictHostKeyChecking=${value}; use yes, accept-new, ask or no`,
          );
        break;
      }
      case 'userknownhostsfile':
        userKnownHostsFiles =
          value.toLowerCase() === 'none'
            ? []
            : value
                .split(/\s+/)
                .filter(Boolean)
                .map((path) => expandHome(path, homeDir));
        break;
      case 'globalknownhostsfile':
        globalKnownHostsFiles =
          value.toLowerCase() === 'none'
            ? []
            : value
                .split(/\s+/)
                .filter(Boolean)
                .map((path) => expandHome(path, homeDir));
        break;
      case 'hashknownhosts':
        hashKnownHosts = yesNo(value, key);
        break;
      case 'serveraliveinterval':
        keepaliveIntervalMs ??= parseSeconds(value, key);
        break;
      case 'serveralivecountmax':
        keepaliveCountMax ??= parseSeconds(value, key) / 1000;
        break;
      case 'connecttimeout':
        connectTimeoutMs ??= parseSeconds(value, key);
        break;
      case 'identityfile':
        identityFiles.push(expandHome(value, homeDir));
        break;
      case 'identitiesonly':
        identitiesOnly = yesNo(value, key);
        break;
      case 'identityagent':
        agentSocket =
          value.toLowerCase() === 'none'
            ? undefined
            : value === 'SSH_AUTH_SOCK'
              ? process.env['SSH_AUTH_SOCK']
              : expandHome(value, homeDir);
        break;
      case 'port':
        optionPort ??= parsePort(value, '-o Port in --ssh-options');
        break;
      case 'user':
        optionUser ??= value;
        break;
      case 'batchmode':
        batchMode = yesNo(value, key);
        break;
      default:
        if (WITHOUT_EFFECT.has(key.toLowerCase()))
          warn(`SSH option ${key} has no effect on Strata's built-in SSH client`);
        else warn(`Unknown SSH option ${key} in --ssh-options is ignored`);
    }
  };

  const tokens = (fields.sshOptions ?? '').split(' ').filter(Boolean);
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!;
    const flag = token.slice(0, 2);
    const takesValue = flag === '-o' || flag === '-i' || flag === '-p' || flag === '-l';
    if (takesValue) {
      const value = token.length > 2 ? token.slice(2) : tokens[++index];
      if (value === undefined) throw usage(`--ssh-options: ${flag} needs a value`);
      if (flag === '-o') setOption(value);
      else if (flag === '-i') identityFiles.push(expandHome(value, homeDir));
      else if (flag === '-p') port = parsePort(value, '-p in --ssh-options');
      else user = value;
      continue;
    }
    if (/^-[46qvCTnxaNkK]+$/.test(token)) continue;
    throw usage(
      `Unsupported entry "${token}" in --ssh-options: Strata's built-in SSH client understands -o Key=Value, -i, -p and -l`,
    );
  }

  return {
    host: fields.remoteHost,
    port:
      fields.remotePort !== undefined
        ? parsePort(fields.remotePort, "'--remote-port' option")
        : (port ?? optionPort ?? 22),
    user: fields.remoteUser ?? user ?? optionUser ?? defaults.username ?? userInfo().username,
    remotePath: fields.remotePath || undefined,
    identityFiles:
      identityFiles.length > 0
        ? identityFiles
        : ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((name) => join(sshDir, name)),
    identitiesOnly,
    agentSocket: agentSocket || undefined,
    userKnownHostsFiles,
    globalKnownHostsFiles,
    hostKeyPolicy: hostKeyPolicy ?? 'yes',
    hashKnownHosts,
    keepaliveIntervalMs: keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: keepaliveCountMax ?? DEFAULT_KEEPALIVE_COUNT_MAX,
    connectTimeoutMs: connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    batchMode,
  };
}

/** `user@host:port`, how messages name a remote host. */
export function describeTarget(target: Pick<RemoteTarget, 'user' | 'host' | 'port'>): string {
  return `${target.user}@${target.host}:${target.port}`;
}
