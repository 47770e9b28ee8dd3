import type { Storage } from '../../storage/storage.js';
import { BLCKSZ } from '../../format/page.js';
import {
  copyDataFileByRanges,
  withHeaderPlace,
  type DataFileCopyOptions,
  type DataFileCopyResult,
} from '../backup/dataFileCopy.js';
import { FileWorkerPool, type FileWorkerPoolOptions } from './workerPool.js';

/**
 * A data file larger than this many blocks (8 MiB) is copied as ranges of this size on every
 * worker at once: otherwise the largest relation segment (up to 1 GiB) would be one thread's job
 * while the others idle.
 */
const RANGE_BLOCKS = 1024;

/**
 * `copyDataFile` / `copyWholeFile` of ../backup/dataFileCopy.ts with the same shapes, run `threads`
 * at a time on worker threads (the bundled CLI) or on the calling thread (unbundled code, files
 * not on this host). A large data file is split into block ranges copied on all workers at once, its
 * records written in order on the calling thread; page_header_map appends stay there too. The
 * backup files are byte for byte the same either way.
 */
export interface FileCopyPool {
  readonly threads: number;
  /** True when copies of files on this host run on worker threads. */
  readonly usesWorkerThreads: boolean;
  copyDataFile(options: DataFileCopyOptions): Promise<DataFileCopyResult>;
  copyWholeFile(
    storage: Storage,
    sourcePath: string,
    destinationPath: string,
    mode: number,
    sync: boolean,
  ): Promise<{ sizeBytes: number; crc: number }>;
  /** Stops the worker threads; call once every copy has settled. */
  close(): Promise<void>;
}

export function createFileCopyPool(
  threads: number,
  options: FileWorkerPoolOptions = {},
): FileCopyPool {
  const pool = new FileWorkerPool(threads, options);
  return {
    threads: pool.threads,
    usesWorkerThreads: pool.usesWorkerThreads,
    async copyDataFile({ storage, headerMap, ...job }) {
      const splits =
        pool.threads > 1 &&
        pool.runsOnWorker(storage, 'copyDataFile', job) &&
        ((await storage.stat(job.sourcePath))?.sizeBytes ?? 0) > RANGE_BLOCKS * BLCKSZ;
      const output = splits
        ? await copyDataFileByRanges(storage, job, {
            rangeBlocks: RANGE_BLOCKS,
            rangesInFlight: pool.threads + 1,
            runRange: async (range) => (await pool.run(storage, 'copyDataFileRange', range)).output,
          })
        : (await pool.run(storage, 'copyDataFile', job)).output;
      return withHeaderPlace(output, headerMap);
    },
    async copyWholeFile(storage, sourcePath, destinationPath, mode, sync) {
      const job = { sourcePath, destinationPath, mode, sync };
      return (await pool.run(storage, 'copyWholeFile', job)).output;
    },
    close: () => pool.close(),
  };
}
