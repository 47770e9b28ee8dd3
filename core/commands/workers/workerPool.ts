import { Worker, threadId as mainThreadId } from 'node:worker_threads';
import { StrataError } from '../../errors.js';
import type { Storage } from '../../storage/storage.js';
import { runFileJob, type FileJobInput, type FileJobKind, type FileJobOutput } from './fileJobs.js';
import {
  deserializeError,
  serializeError,
  type JobRequest,
  type JobResponse,
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
}

/** A job's output and the thread that produced it. */
export interface JobOutcome<K extends FileJobKind> {
  output: FileJobOutput<K>;
  threadId: number;
}

interface PendingJob {
  request: JobRequest;
  resolve: (outcome: JobOutcome<FileJobKind>) => void;
  reject: (error: unknown) => void;
}

interface WorkerSlot {
  worker: Worker;
  job: PendingJob | undefined;
}

/**
 * Runs per-file jobs `threads` at a time: on worker threads when a worker bundle exists and the
 * job's Storage is local (a worker opens its own local files), else on the calling thread with the
 * same limit. Workers start on first use, are unref'd while idle so a forgotten `close()` never
 * keeps the process alive, and a worker that dies fails only the job it was running.
 */
export class FileWorkerPool {
  readonly threads: number;
  private readonly workerUrl: URL | undefined;
  private readonly slots: WorkerSlot[] = [];
  private readonly queue: PendingJob[] = [];
  private inThreadRunning = 0;
  private readonly inThreadQueue: Array<() => void> = [];
  private nextId = 1;
  private closed = false;

  constructor(threads: number, options: FileWorkerPoolOptions = {}) {
    this.threads = Math.max(1, Math.trunc(threads));
    this.workerUrl = 'workerUrl' in options ? options.workerUrl : bundledWorkerUrl();
  }

  /** True when jobs on local Storage run on worker threads. */
  get usesWorkerThreads(): boolean {
    return this.workerUrl !== undefined;
  }

  run<K extends FileJobKind>(
    storage: Storage,
    kind: K,
    input: FileJobInput<K>,
  ): Promise<JobOutcome<K>> {
    if (this.closed) {
      return Promise.reject(new StrataError('internal', 'The file worker pool is closed'));
    }
    if (this.workerUrl === undefined || storage.kind !== 'local') {
      return this.runInThread(storage, kind, input);
    }
    return new Promise<JobOutcome<K>>((resolve, reject) => {
      this.queue.push({
        request: { id: this.nextId++, kind, input } as JobRequest,
        resolve: resolve as (outcome: JobOutcome<FileJobKind>) => void,
        reject,
      });
      this.dispatch();
    });
  }

  /** Stops the workers; jobs still queued fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) {
      pending.reject(new StrataError('internal', 'The file worker pool was closed'));
    }
    await Promise.all(this.slots.splice(0).map((slot) => slot.worker.terminate()));
  }

  private async runInThread<K extends FileJobKind>(
    storage: Storage,
    kind: K,
    input: FileJobInput<K>,
  ): Promise<JobOutcome<K>> {
    // A finishing job hands its place straight to the next waiter, so the count never overshoots.
    if (this.inThreadRunning >= this.threads) {
      await new Promise<void>((resume) => this.inThreadQueue.push(resume));
    } else {
      this.inThreadRunning++;
    }
    try {
      return { output: await runFileJob(storage, kind, input), threadId: mainThreadId };
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
      slot.worker.postMessage(pending.request);
    }
  }

  private startWorker(): WorkerSlot {
    const worker = new Worker(this.workerUrl!);
    const slot: WorkerSlot = { worker, job: undefined };
    worker.unref();
    worker.on('message', (response: JobResponse) => {
      const pending = slot.job;
      if (!pending || pending.request.id !== response.id) return;
      slot.job = undefined;
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
