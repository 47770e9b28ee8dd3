import { StrataError, type StrataErrorCode } from '../../errors.js';
import type { FileJobInput, FileJobKind, FileJobOutput } from './fileJobs.js';

/** Main thread → worker: run one job. */
export interface JobRequest<K extends FileJobKind = FileJobKind> {
  type: 'run';
  id: number;
  kind: K;
  input: FileJobInput<K>;
}

/** Main thread → worker: the caller's signal aborted; the job stops at its next check. */
export interface JobCancel {
  type: 'cancel';
  id: number;
}

export type WorkerRequest = JobRequest | JobCancel;

/** A thrown value as it crosses threads: a StrataError keeps its code, a system error its errno code. */
export interface SerializedError {
  name: string;
  message: string;
  strataCode: StrataErrorCode | undefined;
  errnoCode: string | undefined;
  stack: string | undefined;
}

/** Worker → main thread: the job's output, or what it threw; `threadId` is the thread that ran it. */
export type JobResponse<K extends FileJobKind = FileJobKind> =
  | { id: number; ok: true; output: FileJobOutput<K>; threadId: number }
  | { id: number; ok: false; error: SerializedError; threadId: number };

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      strataCode: error instanceof StrataError ? error.code : undefined,
      errnoCode: !(error instanceof StrataError) && typeof code === 'string' ? code : undefined,
      stack: error.stack,
    };
  }
  return {
    name: 'Error',
    message: String(error),
    strataCode: undefined,
    errnoCode: undefined,
    stack: undefined,
  };
}

/** The error to throw on the main thread, so callers see what they would see without workers. */
export function deserializeError(serialized: SerializedError): Error {
  const error =
    serialized.strataCode !== undefined
      ? new StrataError(serialized.strataCode, serialized.message)
      : Object.assign(new Error(serialized.message), { name: serialized.name });
  if (serialized.errnoCode !== undefined) Object.assign(error, { code: serialized.errnoCode });
  if (serialized.stack !== undefined) error.stack = serialized.stack;
  return error;
}
