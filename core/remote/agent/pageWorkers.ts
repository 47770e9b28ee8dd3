import { availableParallelism } from 'node:os';
import { Worker, type MessagePort } from 'node:worker_threads';
import { copyPageRange } from '../../commands/backup/dataFileCopy.js';
import { StrataError, errorText, isStrataError, type StrataErrorCode } from '../../errors.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import type { ReadHandle } from '../../storage/storage.js';
import type { AgentErrorPayload, PageRangeReply, PageRangeRequest } from '../protocol/ops.js';

/** The agent file started as a worker thread serves page jobs (`workerData.role`). */
export const PAGE_WORKER_ROLE = 'strata-page-worker';

type WorkerReply =
  | { id: number; ok: true; reply: PageRangeReply; bytesRead: number }
  | { id: number; ok: false; error: AgentErrorPayload };

/** LocalStorage counting the bytes its read handles return, for the agent's stats. */
class ReadCountingStorage extends LocalStorage {
  bytesRead = 0;

  override async openRead(path: string): Promise<ReadHandle> {
    const handle = await super.openRead(path);
    return {
      read: async (buffer, position, length) => {
        const bytesRead = await handle.read(buffer, position, length);
        this.bytesRead += bytesRead;
        return bytesRead;
      },
      close: () => handle.close(),
    };
  }
}

function payloadOf(error: unknown): AgentErrorPayload {
  if (isStrataError(error)) return { message: error.message, strataCode: error.code };
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  return { message: errorText(error), ...(typeof errno === 'string' ? { errno } : {}) };
}

/** Rebuilds a worker's error as the error the job would have thrown on the agent's main thread. */
function errorOf(payload: AgentErrorPayload): Error {
  if (payload.strataCode)
    return new StrataError(payload.strataCode as StrataErrorCode, payload.message);
  return Object.assign(new Error(payload.message), payload.errno ? { code: payload.errno } : {});
}

/** The loop of a page worker thread: runs each job it is sent with `copyPageRange`. */
export function servePageJobs(port: MessagePort): void {
  port.on('message', (message: { id: number; job: PageRangeRequest }) => {
    const storage = new ReadCountingStorage();
    copyPageRange(storage, message.job).then(
      (reply) => {
        const records = reply.records;
        // A buffer that owns its whole ArrayBuffer moves without a copy; a slice of Node's shared pool must be copied.
        const owned = records.byteOffset === 0 && records.byteLength === records.buffer.byteLength;
        const result: WorkerReply = {
          id: message.id,
          ok: true,
          reply,
          bytesRead: storage.bytesRead,
        };
        port.postMessage(result, owned ? [records.buffer as ArrayBuffer] : []);
      },
      (error: unknown) =>
        port.postMessage({
          id: message.id,
          ok: false,
          error: payloadOf(error),
        } satisfies WorkerReply),
    );
  });
}

interface QueuedJob {
  job: PageRangeRequest;
  resolve: (reply: PageRangeReply) => void;
  reject: (error: Error) => void;
}

/**
 * Page jobs on worker threads of the agent (the agent file itself, started with a role): the
 * remote host's cores check and compress pages in parallel when the client has several ranges
 * in flight (`-j N`). Workers start on demand, at most one per core.
 */
export class PageWorkerPool {
  private readonly idle: Worker[] = [];
  private readonly queue: QueuedJob[] = [];
  private readonly running = new Map<Worker, { id: number; job: QueuedJob }>();
  private started = 0;
  private nextId = 1;
  private closed = false;
  private readonly maxWorkers: number;

  constructor(
    private readonly scriptPath: string,
    private readonly onBytesRead: (bytes: number) => void,
    maxWorkers = availableParallelism(),
  ) {
    this.maxWorkers = Math.max(1, maxWorkers);
  }

  run(job: PageRangeRequest): Promise<PageRangeReply> {
    return new Promise<PageRangeReply>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      let worker = this.idle.pop();
      if (!worker) {
        if (this.started >= this.maxWorkers) return;
        worker = this.startWorker();
      }
      const queued = this.queue.shift()!;
      const id = this.nextId++;
      this.running.set(worker, { id, job: queued });
      worker.ref();
      worker.postMessage({ id, job: queued.job });
    }
  }

  private startWorker(): Worker {
    this.started++;
    const worker = new Worker(this.scriptPath, { workerData: { role: PAGE_WORKER_ROLE } });
    worker.on('message', (message: WorkerReply) => {
      const current = this.running.get(worker);
      if (!current || current.id !== message.id) return;
      this.running.delete(worker);
      worker.unref();
      this.idle.push(worker);
      if (message.ok) {
        this.onBytesRead(message.bytesRead);
        current.job.resolve({
          ...message.reply,
          records: Buffer.from(
            message.reply.records.buffer,
            message.reply.records.byteOffset,
            message.reply.records.byteLength,
          ),
        });
      } else {
        current.job.reject(errorOf(message.error));
      }
      this.dispatch();
    });
    const fail = (error: Error) => {
      const current = this.running.get(worker);
      this.running.delete(worker);
      const index = this.idle.indexOf(worker);
      if (index >= 0) this.idle.splice(index, 1);
      this.started--;
      current?.job.reject(new Error(`a page worker of the agent failed: ${error.message}`));
      this.dispatch();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.closed && (this.running.has(worker) || this.idle.includes(worker)))
        fail(new Error(`exit status ${code}`));
    });
    return worker;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const queued of this.queue.splice(0)) queued.reject(new Error('the agent is stopping'));
    await Promise.all([...this.idle, ...this.running.keys()].map((worker) => worker.terminate()));
  }
}
