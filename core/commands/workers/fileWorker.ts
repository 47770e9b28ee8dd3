import { parentPort, threadId } from 'node:worker_threads';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { runFileJob, transferablesOf } from './fileJobs.js';
import { serializeError, type JobResponse, type WorkerRequest } from './workerMessages.js';

/**
 * Entry of a file worker thread (bundled as dist/fileWorker.mjs): runs each job it is sent on this
 * host's files and answers with the output or the error. A worker runs one job at a time; the pool
 * sends the next when it answers. A cancel aborts the signal the job was given.
 */
const port = parentPort;
if (!port) throw new Error('fileWorker runs only as a worker thread started by FileWorkerPool');
const storage = new LocalStorage();
const running = new Map<number, AbortController>();

port.on('message', (request: WorkerRequest) => {
  if (request.type === 'cancel') {
    running.get(request.id)?.abort();
    return;
  }
  const controller = new AbortController();
  running.set(request.id, controller);
  runFileJob(storage, request.kind, request.input, controller.signal)
    .then(
      (output) =>
        port.postMessage(
          { id: request.id, ok: true, output, threadId } satisfies JobResponse,
          transferablesOf(request.kind, output),
        ),
      (error: unknown) =>
        port.postMessage({
          id: request.id,
          ok: false,
          error: serializeError(error),
          threadId,
        } satisfies JobResponse),
    )
    .finally(() => running.delete(request.id));
});
