import { posix } from 'node:path';
import { formatLocalTime } from '../../catalog/time.js';
import type { Logger } from '../../log.js';
import type { Storage } from '../../storage/storage.js';
import { PROGRAM_VERSION } from '../context.js';
import type { RecoveryTarget } from './types.js';

/** PostgreSQL 12 moved recovery settings into the server configuration and signal files. */
const FIRST_MAJOR_WITHOUT_RECOVERY_CONF = 12;
/** pg_probackup's FILE_PERMISSION for the files it writes into PGDATA. */
const RECOVERY_FILE_MODE = 0o600;

export interface RecoveryConfigInput {
  backupId: string;
  /** PostgreSQL major of the restored backup (`server-version`). */
  serverMajor: number;
  /** The backup carries its own WAL (STREAM); an ARCHIVE backup always needs WAL from the archive. */
  stream: boolean;
  target: RecoveryTarget;
  restoreAsReplica: boolean;
  /** `--primary-conninfo`, else the `primary_conninfo` stored in backup.control. */
  primaryConninfo: string | undefined;
  primarySlotName: string | undefined;
  /** The configured or given restore command; `none` or undefined means "use the generated one". */
  restoreCommand: string | undefined;
  /** Used when restoreCommand is not configured. */
  generatedRestoreCommand: string;
  /** Unix seconds, printed in the comment line of postgresql.auto.conf. */
  nowSec: number;
}

export interface DefaultRestoreCommandInput {
  strataCommandPath: string;
  backupPath: string;
  instance: string;
  archiveHost?: string;
  archivePort?: string;
  archiveUser?: string;
}

/**
 * The restore_command pg_probackup generates when none is configured (catalog-format.md §15.4):
 * archive-get of this catalog and instance, with `--archive-*` passed on as `--remote-*`.
 */
export function defaultRestoreCommand(input: DefaultRestoreCommandInput): string {
  let command =
    `${input.strataCommandPath} archive-get -B "${input.backupPath}" --instance "${input.instance}" ` +
    '--wal-file-path=%p --wal-file-name=%f';
  if (input.archiveHost) command += ` --remote-host=${input.archiveHost}`;
  if (input.archivePort) command += ` --remote-port=${input.archivePort}`;
  if (input.archiveUser) command += ` --remote-user=${input.archiveUser}`;
  return command;
}

/** A restore_command of the command line or pg_probackup.conf, not `none`. */
export function isRestoreCommandConfigured(
  restoreCommand: string | undefined,
): restoreCommand is string {
  return restoreCommand !== undefined && restoreCommand.toLowerCase() !== 'none';
}

/**
 * "PITR requested" (restore.c create_recovery_conf): an ARCHIVE backup, any recovery target,
 * `latest` as target or timeline, or a configured restore_command — a STREAM backup restored as
 * replica that relies on the archive to catch up needs the restore_command too.
 */
export function isPitrRequested(
  input: Pick<RecoveryConfigInput, 'stream' | 'target' | 'restoreCommand'>,
): boolean {
  const { target } = input;
  return (
    !input.stream ||
    target.time !== undefined ||
    target.xid !== undefined ||
    target.lsn !== undefined ||
    target.name !== undefined ||
    target.immediate === true ||
    target.latest === true ||
    target.timeline === 'latest' ||
    isRestoreCommandConfigured(input.restoreCommand)
  );
}

function timelineSetting(target: RecoveryTarget, serverMajor: number): string | undefined {
  if (target.timeline !== undefined) {
    if (target.timeline === 'current' || target.timeline === 'latest') return target.timeline;
    return String(Number(target.timeline));
  }
  if (target.latest) return 'latest';
  // PostgreSQL 12 changed the default recovery_target_timeline to 'latest'; pg_probackup writes
  // 'current' to keep recovering along the backup's own timeline.
  if (serverMajor >= FIRST_MAJOR_WITHOUT_RECOVERY_CONF) return 'current';
  return undefined;
}

/** The `## recovery settings` block, each line `key = 'value'` with the value verbatim. */
export function renderRecoverySettings(input: RecoveryConfigInput): string {
  const { target } = input;
  const lines = ['## recovery settings'];
  if (target.name !== undefined) lines.push(`recovery_target_name = '${target.name}'`);
  if (target.time !== undefined) lines.push(`recovery_target_time = '${target.time}'`);
  if (target.xid !== undefined) lines.push(`recovery_target_xid = '${target.xid}'`);
  if (target.lsn !== undefined) lines.push(`recovery_target_lsn = '${target.lsn}'`);
  if (target.immediate) lines.push("recovery_target = 'immediate'");
  if (target.inclusive !== undefined) {
    lines.push(`recovery_target_inclusive = '${target.inclusive ? 'true' : 'false'}'`);
  }
  const timeline = timelineSetting(target, input.serverMajor);
  if (timeline !== undefined) lines.push(`recovery_target_timeline = '${timeline}'`);
  lines.push(`recovery_target_action = '${target.action ?? 'pause'}'`);
  const command = isRestoreCommandConfigured(input.restoreCommand)
    ? input.restoreCommand
    : input.generatedRestoreCommand;
  lines.push(`restore_command = '${command}'`);
  return `${lines.join('\n')}\n`;
}

/** The `## standby settings` block written for `-R`, preceded by an empty line. */
export function renderStandbySettings(input: RecoveryConfigInput): string {
  let text = '\n## standby settings\n';
  if (input.primaryConninfo !== undefined)
    text += `primary_conninfo = '${input.primaryConninfo}'\n`;
  if (input.primarySlotName !== undefined)
    text += `primary_slot_name = '${input.primarySlotName}'\n`;
  return text;
}

/** PostgreSQL 11 and older: the whole recovery.conf, or undefined when none is written. */
export function renderRecoveryConf(input: RecoveryConfigInput): string | undefined {
  const pitr = isPitrRequested(input);
  if (!pitr && !input.restoreAsReplica) return undefined;
  let text = `# recovery.conf generated by pg_probackup ${PROGRAM_VERSION}\n`;
  if (pitr) text += renderRecoverySettings(input);
  if (input.restoreAsReplica) text += `${renderStandbySettings(input)}standby_mode = 'on'\n`;
  return text;
}

/**
 * PostgreSQL 12+: the new postgresql.auto.conf. Lines naming restore_command or recovery_target
 * anywhere, and `include … probackup_recovery.conf` lines left by 2.2–2.4 restores, are dropped;
 * then the comment line and the recovery and standby blocks are appended. The kept lines are
 * handled as bytes so that whatever encoding the file is in survives unchanged.
 */
export function renderAutoConf(existing: Buffer, input: RecoveryConfigInput): Buffer {
  const kept = existing
    .toString('latin1')
    .split(/(?<=\n)/)
    .filter((line) => {
      if (line.includes('include') && line.includes('probackup_recovery.conf')) return false;
      return !line.includes('restore_command') && !line.includes('recovery_target');
    })
    .join('');
  let appended =
    `\n# recovery settings added by pg_probackup restore of backup ${input.backupId} ` +
    `at '${formatLocalTime(input.nowSec)}'\n`;
  if (isPitrRequested(input)) appended += renderRecoverySettings(input);
  if (input.restoreAsReplica) appended += renderStandbySettings(input);
  return Buffer.concat([Buffer.from(kept, 'latin1'), Buffer.from(appended, 'utf8')]);
}

/**
 * Writes the recovery configuration into the restored PGDATA (catalog-format.md §15.4):
 * postgresql.auto.conf plus recovery.signal / standby.signal on PostgreSQL 12+, recovery.conf
 * before that.
 */
export async function writeRecoveryConfiguration(
  storage: Storage,
  pgdata: string,
  input: RecoveryConfigInput,
  options: { sync: boolean; logger: Logger },
): Promise<void> {
  const { logger } = options;
  if (input.serverMajor < FIRST_MAJOR_WITHOUT_RECOVERY_CONF) {
    const text = renderRecoveryConf(input);
    if (text === undefined) return;
    const path = posix.join(pgdata, 'recovery.conf');
    logger.verbose('update recovery settings in recovery.conf');
    await storage.writeFile(path, text, { mode: RECOVERY_FILE_MODE, sync: options.sync });
    await storage.chmod(path, RECOVERY_FILE_MODE);
    return;
  }

  const autoConfPath = posix.join(pgdata, 'postgresql.auto.conf');
  logger.verbose('update recovery settings in postgresql.auto.conf');
  const current = await storage.stat(autoConfPath);
  const existing =
    current && current.sizeBytes > 0 ? await storage.readFile(autoConfPath) : Buffer.alloc(0);
  await storage.writeFileAtomic(autoConfPath, renderAutoConf(existing, input), {
    mode: RECOVERY_FILE_MODE,
    tmpSuffix: '.tmp',
    sync: options.sync,
  });
  await storage.chmod(autoConfPath, RECOVERY_FILE_MODE);

  const signals: string[] = [];
  if (isPitrRequested(input)) signals.push('recovery.signal');
  if (input.restoreAsReplica) signals.push('standby.signal');
  for (const name of signals) {
    logger.verbose(`creating ${name} file`);
    await storage.writeFile(posix.join(pgdata, name), '', {
      mode: RECOVERY_FILE_MODE,
      sync: options.sync,
    });
  }
  if (options.sync && signals.length > 0) await storage.syncDir(pgdata);
}
