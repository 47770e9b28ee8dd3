import { Worker, threadId as mainThreadId } from 'node:worker_threads';
import { StrataError } from '../../errors.js';
import type { Storage } from '../../storage/storage.js';
import {
  localJobInput,
  runFileJob,
  type FileJobInput,
  type FileJobKind,
  type FileJobOutput,
} from './fileJobs.js';
import {
  deserializeError,
  serializeError,
  type JobRequest,
  type JobResponse,
  type WorkerRequest,
} from './workerMessages.js';

/**
 * scripts/build.mjs defines this as the worker bundle's file name beside the CLI bundle. Unbundled
 * code (vitest runs the .ts sources) has no such file, since a worker cannot start from .ts.
 */
declare const STRATA_FILE_WORKER: string | undefined;

/** The worker bundle next to the running CLI bundle; undefined when running unbundled. */
export function bundledWorkerUrl(): URL | undefined {
  return typeof STRATA_FILE_WORKER === 'string'
    ? new URL(STRATA_FILE_WORKER, import.meta.url)
    : undefined;
}

export interface FileWorkerPoolOptions {
  /**
   * The worker entry (a bundled fileWorker.ts). Defaults to `bundledWorkerUrl()`; undefined runs
   * every job on the calling thread.
   */
  workerUrl?: URL | undefined;
  /**
   * A job run with a smaller `sizeBytes` stays on the calling thread: for a file of a few pages
   * the round trip to a worker costs more than the work. 0 (the default) sends every job.
   */
  minWorkerJobBytes?: number;
}

/**
 * The pool of a restore or a validation: worker threads only with `-j` above 1. With one thread
 * the files are done one after another wherever they run, and the calling thread of these
 * commands has nothing else to do meanwhile (a backup's streams WAL, so backup keeps its worker),
 * so a worker would only add its start and the copies between threads: `-j 1` stays on the
 * calling thread, as it always was.
 */
/**
 * Most files of a cluster are a few pages (system catalogs, free space and visibility maps): a
 * restore or validation does those on the calling thread and sends the larger ones to workers.
 */
const COMMAND_MIN_WORKER_JOB_BYTES = 256 * 1024;

export function commandWorkerPool(
  threads: number,
  options: FileWorkerPoolOptions = {},
): FileWorkerPool {
  return new FileWorkerPool(
    threads,
    threads > 1
      ? { minWorkerJobBytes: COMMAND_MIN_WORKER_JOB_BYTES, ...options }
      : { workerUrl: undefined },
  );
}

export interface RunOptions {
  /**
   * Stops the job at its next check (a restored data file checks before each page); a job on a
   * worker is told with a message, and fails with the error the job throws on this thread.
   */
  signal?: AbortSignal | undefined;
  /** The bytes the job reads, for the pool's `minWorkerJobBytes`. */
  sizeBytes?: number;
}

/** A job's output and the thread that produced it. */
export interface JobOutcome<K extends FileJobKind> {
  output: FileJobOutput<K>;
  threadId: number;
}

interface PendingJob {
  request: JobRequest;
  signal: AbortSignal | undefined;
  resolve: (outcome: JobOutcome<FileJobKind>) => void;
  reject: (error: unknown) => void;
  /** Removes the abort listener of a dispatched job. */
  settle: () => void;
}

interface WorkerSlot {
  worker: Worker;
  job: PendingJob | undefined;
}

/**
 * Runs per-file jobs `threads` at a time: on worker threads when a worker bundle exists and the
 * job's Storage serves every file the job opens from this host's file system (`localPath`; a
 * worker opens them with its own LocalStorage), else on the calling thread with the same limit.
 * Workers start on first use, are unref'd while idle so a forgotten `close()` never keeps the
 * process alive, and a worker that dies fails only the job it was running.
 */
export class FileWorkerPool {
  readonly threads: number;
  private readonly workerUrl: URL | undefined;
  private readonly minWorkerJobBytes: number;
  private readonly slots: WorkerSlot[] = [];
  private readonly queue: PendingJob[] = [];
  private inThreadRunning = 0;
  private readonly inThreadQueue: Array<() => void> = [];
  private nextId = 1;
  private closed = false;

  constructor(threads: number, options: FileWorkerPoolOptions = {}) {
    this.threads = Math.max(1, Math.trunc(threads));
    this.workerUrl = 'workerUrl' in options ? options.workerUrl : bundledWorkerUrl();
    this.minWorkerJobBytes = options.minWorkerJobBytes ?? 0;
  }

  /** True when jobs whose files are on this host run on worker threads. */
  get usesWorkerThreads(): boolean {
    return this.workerUrl !== undefined;
  }

  /** True when `run(storage, kind, input)` would run the job on a worker thread. */
  runsOnWorker<K extends FileJobKind>(storage: Storage, kind: K, input: FileJobInput<K>): boolean {
    return this.workerInput(storage, kind, input) !== undefined;
  }

  run<K extends FileJobKind>(
    storage: Storage,
    kind: K,
    input: FileJobInput<K>,
    options: RunOptions = {},
  ): Promise<JobOutcome<K>> {
    if (this.closed) {
      return Promise.reject(new StrataError('internal', 'The file worker pool is closed'));
    }
    const small = (options.sizeBytes ?? Infinity) < this.minWorkerJobBytes;
    const workerInput = small ? undefined : this.workerInput(storage, kind, input);
    if (workerInput === undefined) return this.runInThread(storage, kind, input, options.signal);
    return new Promise<JobOutcome<K>>((resolve, reject) => {
      this.queue.push({
        request: { type: 'run', id: this.nextId++, kind, input: workerInput } as JobRequest,
        signal: options.signal,
        resolve: resolve as (outcome: JobOutcome<FileJobKind>) => void,
        reject,
        settle: () => undefined,
      });
      this.dispatch();
    });
  }

  /** Stops the workers; jobs still queued or running on them fail. */
  async close(): Promise<void> {
    this.closed = true;
    const closedError = () => new StrataError('internal', 'The file worker pool was closed');
    for (const pending of this.queue.splice(0)) pending.reject(closedError());
    const slots = this.slots.splice(0);
    for (const slot of slots) {
      const pending = slot.job;
      slot.job = undefined;
      pending?.settle();
      pending?.reject(closedError());
    }
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  /** The input a worker gets: the job's files named by their paths on this host. */
  private workerInput<K extends FileJobKind>(
    storage: Storage,
    kind: K,
    input: FileJobInput<K>,
  ): FileJobInput<K> | undefined {
    if (this.workerUrl === undefined) return undefined;
    return localJobInput(kind, input, (path) => storage.localPath(path));
  }

  private async runInThread<K extends FileJobKind>(
    storage: Storage,
    kind: K,
    input: FileJobInput<K>,
    signal: AbortSignal | undefined,
  ): Promise<JobOutcome<K>> {
    // A finishing job hands its place straight to the next waiter, so the count never overshoots.
    if (this.inThreadRunning >= this.threads) {
      await new Promise<void>((resume) => this.inThreadQueue.push(resume));
    } else {
      this.inThreadRunning++;
    }
    try {
      return { output: await runFileJob(storage, kind, input, signal), threadId: mainThreadId };
    } finally {
      const next = this.inThreadQueue.shift();
      if (next) next();
      else this.inThreadRunning--;
    }
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((candidate) => candidate.job === undefined);
      if (!slot && this.slots.length < this.threads) slot = this.startWorker();
      if (!slot) return;
      const pending = this.queue.shift()!;
      slot.job = pending;
      slot.worker.ref();
      slot.worker.postMessage(pending.request satisfies WorkerRequest);
      this.watchSignal(slot.worker, pending);
    }
  }

  /** Tells the worker running `pending` when its signal aborts (at once if it already has). */
  private watchSignal(worker: Worker, pending: PendingJob): void {
    const { signal } = pending;
    if (signal === undefined) return;
    const cancel = () =>
      worker.postMessage({ type: 'cancel', id: pending.request.id } satisfies WorkerRequest);
    if (signal.aborted) {
      cancel();
      return;
    }
    signal.addEventListener('abort', cancel, { once: true });
    pending.settle = () => signal.removeEventListener('abort', cancel);
  }

  private startWorker(): WorkerSlot {
    const worker = new Worker(this.workerUrl!);
    const slot: WorkerSlot = { worker, job: undefined };
    worker.unref();
    worker.on('message', (response: JobResponse) => {
      const pending = slot.job;
      if (!pending || pending.request.id !== response.id) return;
      slot.job = undefined;
      pending.settle();
      worker.unref();
      if (response.ok) pending.resolve({ output: response.output, threadId: response.threadId });
      else pending.reject(deserializeError(response.error));
      this.dispatch();
    });
    const fail = (error: unknown) => {
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      const pending = slot.job;
      slot.job = undefined;
      if (pending) {
        pending.settle();
        const detail = serializeError(error).message;
        pending.reject(
          new StrataError(
            'internal',
            `A file worker thread failed while running ${pending.request.kind}: ${detail}`,
            { cause: error },
          ),
        );
      }
      if (!this.closed) this.dispatch();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (this.slots.includes(slot)) fail(new Error(`the thread exited with code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }
}
