import type { StrataApi } from './contract.js';

/**
 * The request/response methods of StrataApi, as data: the web server's routes, the Electron IPC
 * handler table and the preload bridge are all built from this list, so a method added to the
 * contract but not here fails to compile (`MissingMethods` below). Browser-safe: no Node imports.
 */
export type ApiMethodName = Exclude<keyof StrataApi, 'subscribe'>;

export const apiMethodNames = [
  'openCatalog',
  'listBackups',
  'getBackup',
  'listBackupFiles',
  'listTimelines',
  'planRestore',
  'startRestore',
  'startBackup',
  'startValidate',
  'startMerge',
  'startDelete',
  'setPin',
  'cancelJob',
  'listJobs',
  'getJobLog',
  'connectHost',
  'listHosts',
  'disconnectHost',
  'demoCatalog',
  'startDemo',
] as const satisfies readonly ApiMethodName[];

type Nothing<T extends never> = T;
/** Compiles only while every contract method is listed above. */
export type UnlistedMethods = Nothing<Exclude<ApiMethodName, (typeof apiMethodNames)[number]>>;

export type ApiArgs<M extends ApiMethodName> = Parameters<StrataApi[M]>;
export type ApiResult<M extends ApiMethodName> = Awaited<ReturnType<StrataApi[M]>>;

export function isApiMethodName(name: string): name is ApiMethodName {
  return (apiMethodNames as readonly string[]).includes(name);
}

/** What a failed call carries across a boundary (HTTP body, IPC reply, utility-process message). */
export interface ApiFailure {
  code: string;
  message: string;
}

/** The reply envelope of IPC and of the utility-process relay; HTTP uses `{ error }` alone. */
export type ApiReply<T> = { ok: true; value: T } | { ok: false; error: ApiFailure };

/**
 * The error a client (renderer, Electron main) sees when a call fails: the engine's message in
 * plain words and its stable code (`usage`, `backup-not-found`, `lock`, … of core/errors.ts, or
 * `unauthorized` / `not-found` / `bad-request` from the web server).
 */
export class StrataApiError extends Error {
  readonly code: string;

  constructor(failure: ApiFailure) {
    super(failure.message);
    this.name = 'StrataApiError';
    this.code = failure.code;
  }
}

/** The failure to send for a thrown value: a StrataError (or anything with a string `code`) keeps its code. */
export function apiFailureOf(error: unknown): ApiFailure {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const isEngineError = error.name === 'StrataError' || error.name === 'StrataApiError';
    return {
      code: isEngineError && typeof code === 'string' ? code : 'internal',
      message: error.message,
    };
  }
  return { code: 'internal', message: String(error) };
}

/** The value of a reply, or its failure thrown as a StrataApiError. */
export function unwrapReply<T>(reply: ApiReply<T>): T {
  if (reply.ok) return reply.value;
  throw new StrataApiError(reply.error);
}
