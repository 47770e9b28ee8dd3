import type { RecoveryTarget } from '../commands/restore/types.js';
import type { BackupRequest, RecoveryTargetRequest, RestoreRequest } from './contract.js';

/**
 * The exact `strata …` command line equivalent to each job, shown before every action (DESIGN.md:
 * "the equivalent CLI command shown before every action") and kept on the job. Arguments are
 * quoted for a POSIX shell, so the line can be pasted as is. The restore parameters of a job are
 * built from the same pieces (`restoreTargetOf`, `pathMappingArgument`) so the two cannot drift.
 */

const PROGRAM = 'strata';

/** A word a POSIX shell passes through unchanged, or the word in single quotes. */
export function shellQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_./:@%+,=-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function option(name: string, value: string | number): string {
  return `--${name}=${shellQuote(String(value))}`;
}

function commandLine(
  subcommand: string,
  backupPath: string,
  instance: string,
  rest: string[],
): string {
  return [
    PROGRAM,
    subcommand,
    '-B',
    shellQuote(backupPath),
    option('instance', instance),
    ...rest,
  ].join(' ');
}

/** The engine's RecoveryTarget for a request target (cli-behaviour.md §2.3 option by option). */
export function restoreTargetOf(
  request: Pick<RestoreRequest, 'target' | 'timeline' | 'action'>,
): RecoveryTarget {
  const target: RecoveryTarget = {};
  const requested: RecoveryTargetRequest = request.target;
  switch (requested.kind) {
    case 'latest':
      target.latest = true;
      break;
    case 'immediate':
      target.immediate = true;
      break;
    case 'time':
      target.time = requested.time;
      break;
    case 'lsn':
      target.lsn = requested.lsn;
      break;
    case 'xid':
      target.xid = requested.xid;
      break;
    case 'name':
      target.name = requested.name;
      break;
  }
  if (request.timeline !== undefined) target.timeline = request.timeline;
  if (request.action !== undefined) target.action = request.action;
  return target;
}

/** `OLDDIR=NEWDIR` with `=` inside a path escaped as `\=` (pathMapping.ts reads it back). */
export function pathMappingArgument(mapping: { from: string; to: string }): string {
  const escape = (path: string) => path.replace(/=/g, '\\=');
  return `${escape(mapping.from)}=${escape(mapping.to)}`;
}

function targetArguments(request: RestoreRequest): string[] {
  const target = request.target;
  const args: string[] = [];
  switch (target.kind) {
    case 'latest':
    case 'immediate':
      args.push(option('recovery-target', target.kind));
      break;
    case 'time':
      args.push(option('recovery-target-time', target.time));
      break;
    case 'lsn':
      args.push(option('recovery-target-lsn', target.lsn));
      break;
    case 'xid':
      args.push(option('recovery-target-xid', target.xid));
      break;
    case 'name':
      args.push(option('recovery-target-name', target.name));
      break;
  }
  if (request.timeline !== undefined)
    args.push(option('recovery-target-timeline', request.timeline));
  if (request.action !== undefined) args.push(option('recovery-target-action', request.action));
  return args;
}

/** An SSH host as a command line names it (pg_probackup's --remote-* options). */
export interface SshHostWords {
  host: string;
  port: number;
  user: string;
  remotePath?: string | null;
  sshOptions?: string | null;
}

/**
 * The `--remote-*` options reaching `host`; `none` turns off a remote host that the instance's
 * pg_probackup.conf names, for a command that must work on this computer's files.
 */
export function remoteArguments(host: SshHostWords | 'none'): string[] {
  if (host === 'none') return ['--remote-proto=none'];
  const args = [
    option('remote-host', host.host),
    option('remote-port', host.port),
    option('remote-user', host.user),
  ];
  if (host.remotePath) args.push(option('remote-path', host.remotePath));
  if (host.sshOptions) args.push(option('ssh-options', host.sshOptions));
  return args;
}

/** A command to run on another host: `ssh -p PORT user@host '<command>'`; as is for this computer. */
export function onHost(command: string, host: SshHostWords | undefined): string {
  if (!host) return command;
  return `ssh -p ${host.port} ${shellQuote(`${host.user}@${host.host}`)} ${shellQuote(command)}`;
}

/** `extra`: further options, such as `remoteArguments`, placed before the catalog's. */
export function restoreCommandLine(request: RestoreRequest, extra: string[] = []): string {
  const args = ['-D', shellQuote(request.destination)];
  if (request.backupId !== undefined) args.push('-i', shellQuote(request.backupId));
  args.push(...targetArguments(request));
  if (request.incrementalMode !== undefined && request.incrementalMode !== 'none') {
    args.push('-I', request.incrementalMode);
  }
  for (const mapping of request.tablespaceMapping ?? [])
    args.push('-T', shellQuote(pathMappingArgument(mapping)));
  for (const mapping of request.externalMapping ?? []) {
    args.push(option('external-mapping', pathMappingArgument(mapping)));
  }
  if (request.restoreAsReplica !== undefined) {
    args.push('-R');
    if (request.restoreAsReplica.primaryConninfo !== undefined) {
      args.push(option('primary-conninfo', request.restoreAsReplica.primaryConninfo));
    }
    if (request.restoreAsReplica.slotName !== undefined)
      args.push('-S', shellQuote(request.restoreAsReplica.slotName));
  }
  for (const name of request.includeDatabases ?? []) args.push(option('db-include', name));
  if (request.threads !== undefined && request.threads > 1)
    args.push('-j', String(request.threads));
  args.push(...extra);
  return commandLine('restore', request.backupPath, request.instance, args);
}

export function backupCommandLine(request: BackupRequest): string {
  const args = ['-b', request.mode];
  if (request.stream) args.push('--stream');
  if (request.compressAlg !== undefined)
    args.push(option('compress-algorithm', request.compressAlg));
  if (request.compressLevel !== undefined)
    args.push(option('compress-level', request.compressLevel));
  if (request.threads !== undefined && request.threads > 1)
    args.push('-j', String(request.threads));
  if (request.note !== undefined) args.push(option('note', request.note));
  if (request.ttlSeconds !== undefined) args.push(option('ttl', request.ttlSeconds));
  const connection = request.connection ?? {};
  if (connection.host !== undefined) args.push('-h', shellQuote(connection.host));
  if (connection.port !== undefined) args.push('-p', String(connection.port));
  if (connection.user !== undefined) args.push('-U', shellQuote(connection.user));
  if (connection.database !== undefined) args.push('-d', shellQuote(connection.database));
  return commandLine('backup', request.backupPath, request.instance, args);
}

export function validateCommandLine(
  backupPath: string,
  instance: string,
  backupId?: string,
): string {
  return commandLine(
    'validate',
    backupPath,
    instance,
    backupId === undefined ? [] : ['-i', shellQuote(backupId)],
  );
}

export function mergeCommandLine(backupPath: string, instance: string, backupId: string): string {
  return commandLine('merge', backupPath, instance, ['-i', shellQuote(backupId)]);
}

export function deleteCommandLine(backupPath: string, instance: string, backupId: string): string {
  return commandLine('delete', backupPath, instance, ['-i', shellQuote(backupId)]);
}

export function setBackupCommandLine(
  backupPath: string,
  instance: string,
  backupId: string,
  pin: { ttlSeconds?: number; expireTime?: string; note?: string },
): string {
  const args = ['-i', shellQuote(backupId)];
  if (pin.ttlSeconds !== undefined) args.push(option('ttl', pin.ttlSeconds));
  if (pin.expireTime !== undefined) args.push(option('expire-time', pin.expireTime));
  if (pin.note !== undefined) args.push(option('note', pin.note));
  return commandLine('set-backup', backupPath, instance, args);
}

/** The demo is made by `strata ui --demo` (or the app's first start); no single engine command does it. */
export const demoCommandLine = `${PROGRAM} ui --demo`;
