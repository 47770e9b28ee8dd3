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
import { restoreDataFile, type DataFileSource } from '../restore/dataFile.js';
import {
  checkDataFilePages,
  type DataFileCheck,
  type DataFileReport,
} from '../validate/dataFilePages.js';
import { SequentialCrcReader, type FileCrcKind } from '../validate/sequentialReader.js';

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

export interface RestoreDataFileJob {
  destinationPath: string;
  displayPath: string;
  mode: number;
  nBlocks: number | undefined;
  sources: RestoreDataFileJobSource[];
  newestFirst: boolean;
}

export interface CheckDataFileJob {
  /** What `checkDataFilePages` checks, headers already read from page_header_map. */
  check: DataFileCheck;
  crcKind: FileCrcKind;
}

export interface CheckDataFileOutput {
  /** The whole-file CRC computed in the same pass. */
  crc: number;
  report: DataFileReport;
}

/** Every job kind with its input and output. */
export interface FileJobs {
  copyDataFile: { input: DataFileCopyJob; output: DataFileCopyOutput };
  copyDataFileRange: { input: PageRangeJob; output: PageRangeOutput };
  copyWholeFile: { input: WholeFileCopyJob; output: { sizeBytes: number; crc: number } };
  restoreDataFile: { input: RestoreDataFileJob; output: { writtenBytes: number } };
  checkDataFile: { input: CheckDataFileJob; output: CheckDataFileOutput };
}

export type FileJobKind = keyof FileJobs;
export type FileJobInput<K extends FileJobKind> = FileJobs[K]['input'];
export type FileJobOutput<K extends FileJobKind> = FileJobs[K]['output'];

const handlers: {
  [K in FileJobKind]: (storage: Storage, input: FileJobInput<K>) => Promise<FileJobOutput<K>>;
} = {
  copyDataFile: (storage, input) => copyDataFilePages(storage, input),
  copyDataFileRange: (storage, input) => copyPageRange(storage, input),
  copyWholeFile: (storage, input) =>
    copyWholeFile(storage, input.sourcePath, input.destinationPath, input.mode, input.sync),
  async restoreDataFile(storage, input) {
    const sources: DataFileSource[] = input.sources.map(({ headerMap, ...source }) => ({
      ...source,
      loadHeaders: headerMap
        ? () => readPageHeaderSlice(storage, headerMap.mapPath, headerMap.entry)
        : undefined,
    }));
    const writtenBytes = await restoreDataFile(storage, {
      destinationPath: input.destinationPath,
      displayPath: input.displayPath,
      mode: input.mode,
      nBlocks: input.nBlocks,
      sources,
      newestFirst: input.newestFirst,
      signal: undefined,
    });
    return { writtenBytes };
  },
  async checkDataFile(storage, input) {
    const report: DataFileReport = { problems: [], warnings: [] };
    const handle = await storage.openRead(input.check.fullPath);
    try {
      const reader = new SequentialCrcReader(handle, input.crcKind, input.check.sizeBytes);
      const crc = await checkDataFilePages(input.check, reader, report);
      return { crc, report };
    } finally {
      await handle.close();
    }
  },
};

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

/** Runs one job on this thread. */
export function runFileJob<K extends FileJobKind>(
  storage: Storage,
  kind: K,
  input: FileJobInput<K>,
): Promise<FileJobOutput<K>> {
  const handler = handlers[kind] as (
    storage: Storage,
    input: FileJobInput<K>,
  ) => Promise<FileJobOutput<K>>;
  return handler(storage, input);
}
