import { posix } from 'node:path';
import { StrataError } from '../../errors.js';
import { effectiveInstanceConfig, readInstanceConfig } from '../../catalog/instanceConfig.js';
import type { CompressAlgorithm } from '../../catalog/types.js';
import { parseControlFile } from '../../format/pgControl.js';
import type { Storage } from '../../storage/storage.js';
import { describeIoError } from './archiveFiles.js';

/** What archive-push takes from `pg_probackup.conf`, defaults applied. */
export interface PushInstanceSettings {
  pgdata: string;
  systemIdentifier: bigint;
  compressAlgorithm: CompressAlgorithm;
  compressLevel: number;
  archiveTimeoutSec: number;
}

/**
 * Reads the instance's `pg_probackup.conf` for archive-push. A push without a usable `pgdata`
 * cannot locate the cluster it archives for, so it is refused as pg_probackup refuses it.
 */
export async function readPushInstanceSettings(
  storage: Storage,
  backupPath: string,
  instance: string,
): Promise<PushInstanceSettings> {
  const instanceDir = posix.join(backupPath, 'backups', instance);
  const instanceStat = await storage.stat(instanceDir);
  if (instanceStat?.type !== 'directory') {
    throw new StrataError(
      'instance-not-found',
      `Instance '${instance}' does not exist in this backup catalog`,
    );
  }
  const configPath = posix.join(instanceDir, 'pg_probackup.conf');
  if (!(await storage.stat(configPath))) {
    throw new StrataError('config', 'Cannot read pg_probackup.conf for this instance');
  }
  const config = effectiveInstanceConfig(await readInstanceConfig(storage, configPath));
  if (!config.pgdata) {
    throw new StrataError('config', 'Cannot read pg_probackup.conf for this instance');
  }
  return {
    pgdata: config.pgdata,
    systemIdentifier: config.systemIdentifier ?? 0n,
    compressAlgorithm: config.compressAlgorithm ?? 'none',
    compressLevel: config.compressLevel ?? 1,
    archiveTimeoutSec: config.archiveTimeoutSec ?? 300,
  };
}

async function readControlFileOf(storage: Storage, pgdata: string) {
  const path = posix.join(pgdata, 'global', 'pg_control');
  let bytes: Buffer;
  try {
    bytes = await storage.readFile(path);
  } catch (error) {
    throw new StrataError(
      'io',
      `Could not open file "${path}" for reading: ${describeIoError(error)}`,
      { cause: error },
    );
  }
  return parseControlFile(bytes);
}

/** `system_identifier` of the cluster whose data directory is `pgdata`. */
export async function readSystemIdentifier(storage: Storage, pgdata: string): Promise<bigint> {
  return (await readControlFileOf(storage, pgdata)).systemIdentifier;
}

/** `xlog_seg_size` of the cluster whose data directory is `pgdata`. */
export async function readWalSegmentSize(storage: Storage, pgdata: string): Promise<number> {
  return (await readControlFileOf(storage, pgdata)).xlogSegSize;
}
