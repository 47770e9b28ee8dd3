import { readPageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import type { FileEntry } from '../../catalog/types.js';
import type { Storage } from '../../storage/storage.js';
import {
  copyDataFilePages,
  copyPageRange,
  copyWholeFile,
  type DataFileCopyJob,
  type DataFileCopyOutput,
  type PageRangeJob,
  type PageRangeOutput,
} from '../backup/dataFileCopy.js';
import {
  restoreDataFilePages,
  type DataFileSource,
  type RestoredDataFile,
} from '../restore/dataFile.js';
import type { ExistingPagesRequest } from '../restore/existingPages.js';
import { checkBackupFile, type BackupFileCheck } from '../validate/backupFile.js';
import type { DataFileReport } from '../validate/dataFilePages.js';

/**
 * The per-file jobs of `-j N` (pg_probackup hands each thread whole files). Inputs and outputs are
 * plain data so that a job crosses to a worker thread by structured clone and runs there on the
 * thread's own local Storage, or runs unchanged on the calling thread.
 */

export interface WholeFileCopyJob {
  sourcePath: string;
  destinationPath: string;
  /** st_mode of the source; the permission bits are given to the copy. */
  mode: number;
  sync: boolean;
}

/** A chain member's stored copy of a data file, as `DataFileSource` without its closure. */
export interface RestoreDataFileJobSource extends Omit<DataFileSource, 'loadHeaders'> {
  /** The member's page_header_map and the file's entry in its file list (2.4.0+ members). */
  headerMap: { mapPath: string; entry: FileEntry } | undefined;
}

/** `RestoreDataFileOptions` of ../restore/dataFile.ts as plain data. */
export interface RestoreDataFileJob {
  destinationPath: string;
  displayPath: string;
  mode: number;
  nBlocks: number | undefined;
  sources: RestoreDataFileJobSource[];
  newestFirst: boolean;
  /** Incremental restore into the existing file. */
  existing?: ExistingPagesRequest;
}

/** Every job kind with its input and output. */
export interface FileJobs {
  copyDataFile: { input: DataFileCopyJob; output: DataFileCopyOutput };
  copyDataFileRange: { input: PageRangeJob; output: PageRangeOutput };
  copyWholeFile: { input: WholeFileCopyJob; output: { sizeBytes: number; crc: number } };
  restoreDataFile: { input: RestoreDataFileJob; output: RestoredDataFile };
  checkBackupFile: { input: BackupFileCheck; output: DataFileReport };
}

export type FileJobKind = keyof FileJobs;
export type FileJobInput<K extends FileJobKind> = FileJobs[K]['input'];
export type FileJobOutput<K extends FileJobKind> = FileJobs[K]['output'];

type JobHandler<K extends FileJobKind> = (
  storage: Storage,
  input: FileJobInput<K>,
  signal: AbortSignal | undefined,
) => Promise<FileJobOutput<K>>;

const handlers: { [K in FileJobKind]: JobHandler<K> } = {
  copyDataFile: (storage, input) => copyDataFilePages(storage, input),
  copyDataFileRange: (storage, input) => copyPageRange(storage, input),
  copyWholeFile: (storage, input) =>
    copyWholeFile(storage, input.sourcePath, input.destinationPath, input.mode, input.sync),
  restoreDataFile(storage, { sources, ...input }, signal) {
    return restoreDataFilePages(storage, {
      ...input,
      sources: sources.map(({ headerMap, ...source }) => ({
        ...source,
        loadHeaders: headerMap
          ? () => readPageHeaderSlice(storage, headerMap.mapPath, headerMap.entry)
          : undefined,
      })),
      signal,
    });
  },
  checkBackupFile: (storage, input) => checkBackupFile(storage, input),
};

/** A Storage's answer for where this host holds a path (`Storage.localPath`). */
export type LocalPathOf = (path: string) => string | undefined;

/** `input` with the fields `keys` replaced by their local paths; undefined when one has none. */
function withLocalPaths<T extends Record<P, string>, P extends keyof T>(
  input: T,
  localPath: LocalPathOf,
  keys: readonly P[],
): T | undefined {
  const local = { ...input };
  for (const key of keys) {
    const path = localPath(input[key]);
    if (path === undefined) return undefined;
    local[key] = path as T[P];
  }
  return local;
}

/** Every file a job opens, rewritten to where this host holds it. */
const localInputs: {
  [K in FileJobKind]: (
    input: FileJobInput<K>,
    localPath: LocalPathOf,
  ) => FileJobInput<K> | undefined;
} = {
  copyDataFile: (input, localPath) =>
    withLocalPaths(input, localPath, ['sourcePath', 'destinationPath']),
  copyDataFileRange: (input, localPath) => withLocalPaths(input, localPath, ['sourcePath']),
  copyWholeFile: (input, localPath) =>
    withLocalPaths(input, localPath, ['sourcePath', 'destinationPath']),
  restoreDataFile(input, localPath) {
    const job = withLocalPaths(input, localPath, ['destinationPath']);
    if (job === undefined) return undefined;
    const sources: RestoreDataFileJobSource[] = [];
    for (const { headerMap, ...stored } of input.sources) {
      const source = withLocalPaths(stored, localPath, ['path']);
      const map = headerMap && withLocalPaths(headerMap, localPath, ['mapPath']);
      if (source === undefined || (headerMap !== undefined && map === undefined)) return undefined;
      sources.push({ ...source, headerMap: map });
    }
    return { ...job, sources };
  },
  checkBackupFile: (input, localPath) =>
    withLocalPaths(input, localPath, ['fullPath', 'headerMapPath']),
};

/**
 * The job's input with every file it opens named by its path on this host's file system, for a
 * worker thread's own LocalStorage; undefined when one of them is not there (a remote PGDATA).
 */
export function localJobInput<K extends FileJobKind>(
  kind: K,
  input: FileJobInput<K>,
  localPath: LocalPathOf,
): FileJobInput<K> | undefined {
  const rewrite = localInputs[kind] as (
    input: FileJobInput<K>,
    localPath: LocalPathOf,
  ) => FileJobInput<K> | undefined;
  return rewrite(input, localPath);
}

/** Buffers of a job's output that a worker hands over (transfers) instead of copying. */
export function transferablesOf<K extends FileJobKind>(
  kind: K,
  output: FileJobOutput<K>,
): ArrayBuffer[] {
  if (kind !== 'copyDataFileRange') return [];
  const { records } = output as PageRangeOutput;
  // Only a buffer the records fill alone: transferring detaches all of it.
  const whole = records.byteOffset === 0 && records.buffer.byteLength === records.byteLength;
  return whole && records.buffer instanceof ArrayBuffer ? [records.buffer] : [];
}

/** Runs one job on this thread; a job that can stop early (restoreDataFile) watches `signal`. */
export function runFileJob<K extends FileJobKind>(
  storage: Storage,
  kind: K,
  input: FileJobInput<K>,
  signal?: AbortSignal,
): Promise<FileJobOutput<K>> {
  const handler = handlers[kind] as JobHandler<K>;
  return handler(storage, input, signal);
}
