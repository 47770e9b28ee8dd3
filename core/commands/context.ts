import type { Logger } from '../log.js';
import type { Storage } from '../storage/storage.js';

/**
 * What every command runs with: the Storage of this host (catalog and, for local work, PGDATA),
 * the Logger its messages go to, a clock (tests fix it) and a signal that cancels it.
 */
export interface CommandContext {
  storage: Storage;
  logger: Logger;
  /** Unix milliseconds. */
  now: () => number;
  signal?: AbortSignal;
}

/** pg_probackup claims this version in `program-version` and in messages (DESIGN.md). */
export const PROGRAM_VERSION = '2.5.0';
/** The pg_probackup release whose behaviour Strata follows, printed by `strata --version`. */
export const COMPATIBLE_PROBACKUP_VERSION = '2.5.16';
export const STRATA_VERSION = '0.1.0';
