import { parseProbackupTime } from '../../catalog/time.js';
import { parseCInteger } from '../../catalog/units.js';
import { StrataError } from '../../errors.js';
import { parseLsn } from '../../format/lsn.js';
import type { Lsn } from '../../format/lsn.js';

/**
 * The recovery target of `restore` / `validate` as the user gave it (cli-behaviour.md §2.3).
 * Strings stay as typed: pg_probackup writes them verbatim into the recovery settings.
 */
export interface RecoveryTarget {
  /** `--recovery-target-time`, as the user typed it (no offset = local time). */
  time?: string;
  xid?: string;
  lsn?: string;
  name?: string;
  /** `--recovery-target=immediate` (or the legacy `--immediate`). */
  immediate?: boolean;
  /** `--recovery-target=latest`. */
  latest?: boolean;
  inclusive?: boolean;
  /** A timeline number, `current` or `latest`. */
  timeline?: string;
  action?: 'pause' | 'promote' | 'shutdown';
}

/** The parsed values of a checked RecoveryTarget, for choosing a backup and validating WAL. */
export interface ParsedRecoveryTarget {
  /** Unix seconds. */
  time?: number;
  xid?: bigint;
  lsn?: Lsn;
  /** Set only when `--recovery-target-timeline` is a number. */
  timelineId?: number;
}

/** `-I, --incremental-mode` (cli-behaviour.md §6.1). */
export type IncrementalMode = 'none' | 'checksum' | 'lsn';

export interface RestoreParams {
  backupPath: string;
  instance: string;
  pgdata: string;
  backupId?: string;
  target: RecoveryTarget;
  restoreAsReplica: boolean;
  primaryConninfo?: string;
  primarySlotName?: string;
  /** The instance's `restore-command` or `--restore-command`; `none` means "generate one". */
  restoreCommand?: string;
  archiveHost?: string;
  archivePort?: string;
  archiveUser?: string;
  noValidate: boolean;
  /** Implies noValidate; restores a CORRUPT/ORPHAN backup with a warning. */
  force: boolean;
  skipBlockValidation: boolean;
  threads: number;
  noSync: boolean;
  /**
   * The command prefix that runs Strata, already quoted, put at the start of the generated
   * restore_command (for example `"/usr/bin/node" "/opt/strata/dist/strata.mjs"`).
   */
  strataCommandPath: string;
  progress: boolean;
  /** `-I`: `checksum` and `lsn` restore into a non-empty PGDATA, reusing the pages it holds. */
  incrementalMode?: IncrementalMode;
  /** `--db-include` / `--db-exclude` (partial restore, mutually exclusive): database names. */
  dbInclude?: string[];
  dbExclude?: string[];
  /** `--destroy-all-other-dbs`: allows a partial restore into a non-empty PGDATA with `-I`. */
  destroyAllOtherDbs?: boolean;
  /** `-T OLD=NEW`, as typed (parsed by parsePathMapping). */
  tablespaceMapping?: string[];
  /** `--external-mapping OLD=NEW`, as typed. */
  externalMapping?: string[];
  /** `--skip-external-dirs`: restore PGDATA only, leaving the backup's external directories out. */
  skipExternalDirs?: boolean;
  /** `-X, --waldir`: an absolute, empty directory that `pg_wal` becomes a symlink to. */
  waldir?: string;
}

const TARGET_ACTIONS = ['pause', 'promote', 'shutdown'];

/**
 * `--recovery-target` accepts exactly `immediate` or `latest` (restore.c parseRecoveryTargetOptions);
 * returns the RecoveryTarget flags it stands for.
 */
export function parseRecoveryTargetValue(
  value: string,
): Pick<RecoveryTarget, 'immediate' | 'latest'> {
  if (value === 'immediate') return { immediate: true };
  if (value === 'latest') return { latest: true };
  throw new StrataError('usage', `Invalid value for '--recovery-target' option '${value}'`);
}

/**
 * Checks the recovery-target options with pg_probackup's rules and messages (cli-behaviour.md
 * §2.3, restore.c parseRecoveryTargetOptions) and returns their parsed values.
 */
export function validateRecoveryTargetOptions(target: RecoveryTarget): ParsedRecoveryTarget {
  const parsed: ParsedRecoveryTarget = {};
  let targetsGiven = 0;

  if (target.time !== undefined) {
    targetsGiven++;
    const time = parseProbackupTime(target.time, 'local');
    if (time === null) {
      throw new StrataError(
        'usage',
        `Invalid value for '--recovery-target-time' option '${target.time}'`,
      );
    }
    parsed.time = time;
  }

  if (target.xid !== undefined) {
    targetsGiven++;
    // TransactionId is 32 bits in vanilla PostgreSQL; pg_probackup parses it with parse_uint32.
    const xid = parseCInteger(target.xid, 'uint32');
    if (xid === undefined) {
      throw new StrataError(
        'usage',
        `Invalid value for '--recovery-target-xid' option '${target.xid}'`,
      );
    }
    parsed.xid = xid;
  }

  if (target.lsn !== undefined) {
    targetsGiven++;
    parsed.lsn = parseLsn(target.lsn);
  }

  if (
    target.timeline !== undefined &&
    target.timeline !== 'current' &&
    target.timeline !== 'latest'
  ) {
    const timelineId = /^[0-9]+$/.test(target.timeline) ? Number(target.timeline) : 0;
    if (!(timelineId > 0 && timelineId <= 0xffffffff)) {
      throw new StrataError(
        'usage',
        `Invalid value for '--recovery-target-timeline' option '${target.timeline}'`,
      );
    }
    parsed.timelineId = timelineId;
  }

  if (target.immediate) targetsGiven++;
  if (target.latest) targetsGiven++;
  if (target.name !== undefined) targetsGiven++;

  if (target.action !== undefined && !TARGET_ACTIONS.includes(target.action)) {
    throw new StrataError(
      'usage',
      `Invalid value for '--recovery-target-action' option '${String(target.action)}'`,
    );
  }

  if (targetsGiven > 1) {
    throw new StrataError(
      'usage',
      "At most one of '--recovery-target', '--recovery-target-name', '--recovery-target-time', " +
        "'--recovery-target-xid' or '--recovery-target-lsn' options can be specified",
    );
  }

  if (
    target.inclusive === true &&
    target.time === undefined &&
    target.xid === undefined &&
    target.lsn === undefined
  ) {
    throw new StrataError(
      'usage',
      "The '--recovery-target-inclusive' option can be applied only when either of " +
        "'--recovery-target-time', '--recovery-target-xid' or '--recovery-target-lsn' options is specified",
    );
  }

  if (target.action !== undefined && targetsGiven === 0) {
    throw new StrataError(
      'usage',
      "The '--recovery-target-action' option can be applied only when either of '--recovery-target', " +
        "'--recovery-target-time', '--recovery-target-xid', '--recovery-target-lsn' or " +
        "'--recovery-target-name' options is specified",
    );
  }

  return parsed;
}
