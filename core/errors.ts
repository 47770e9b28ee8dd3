/**
 * The error every layer throws for a condition a user can cause or must act on. `message` is the
 * text after `ERROR: ` in pg_probackup's wording where it has one; `code` is stable for the UI and
 * for tests. The CLI turns any StrataError into one `ERROR:` line and exit code 1.
 */
export type StrataErrorCode =
  | 'usage'
  | 'catalog'
  | 'instance-not-found'
  | 'backup-not-found'
  | 'config'
  | 'format'
  | 'corrupt'
  | 'io'
  | 'lock'
  | 'postgres'
  | 'wal'
  | 'restore'
  | 'remote-not-connected'
  | 'interrupted'
  | 'internal';

export class StrataError extends Error {
  readonly code: StrataErrorCode;

  constructor(code: StrataErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StrataError';
    this.code = code;
  }
}

export function isStrataError(error: unknown): error is StrataError {
  return error instanceof StrataError;
}

/** Text of an unknown thrown value, for wrapping foreign errors into StrataError messages. */
export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
