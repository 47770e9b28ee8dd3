import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { getSystemErrorMap } from 'node:util';
import { createGunzip, createGzip } from 'node:zlib';
import { errorText } from '../../errors.js';
import { crc32cFinal, crc32cInit, crc32cUpdate } from '../../format/crc32c.js';
import { isWalSegmentName } from '../../format/walNames.js';
import type { ReadHandle, Storage } from '../../storage/storage.js';
import { storageErrorCode } from '../../storage/storage.js';

/** pg_probackup copies WAL through a 1 MiB buffer (archive.c `OUT_BUF_SIZE`). */
export const COPY_CHUNK_BYTES = 1024 * 1024;

/** Reads an open file in chunks of `COPY_CHUNK_BYTES`; each chunk is a fresh buffer the consumer may keep. */
export async function* readHandleChunks(handle: ReadHandle): AsyncGenerator<Buffer> {
  let position = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
    const bytesRead = await handle.read(chunk, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead);
  }
}

/** Reads a file of `storage` in chunks, closing it when the reader stops. */
export async function* readFileChunks(storage: Storage, path: string): AsyncGenerator<Buffer> {
  const handle = await storage.openRead(path);
  try {
    yield* readHandleChunks(handle);
  } finally {
    await handle.close();
  }
}

/** How the bytes between a source and a sink are transformed. */
export type ChunkCodec = { kind: 'plain' } | { kind: 'gzip'; level: number } | { kind: 'gunzip' };

/**
 * Streams `chunks` through the codec into `sink`, one chunk at a time, so a WAL segment is never held
 * in memory whole on either side of the (de)compressor.
 */
export async function pumpChunks(
  chunks: AsyncIterable<Buffer>,
  codec: ChunkCodec,
  sink: (chunk: Buffer) => Promise<void> | void,
): Promise<void> {
  const drain = async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) await sink(chunk);
  };
  if (codec.kind === 'plain') {
    await drain(chunks);
    return;
  }
  const transform = codec.kind === 'gzip' ? createGzip({ level: codec.level }) : createGunzip();
  await pipeline(chunks, transform, drain);
}

/** CRC-32C of a file's content; of its decompressed content when `gzipped`. */
export async function crc32cOfFile(
  storage: Storage,
  path: string,
  gzipped: boolean,
): Promise<number> {
  let state = crc32cInit;
  await pumpChunks(
    readFileChunks(storage, path),
    gzipped ? { kind: 'gunzip' } : { kind: 'plain' },
    (chunk) => {
      state = crc32cUpdate(state, chunk);
    },
  );
  return crc32cFinal(state);
}

/** One file of the archive that may hold a requested WAL file. */
export interface ArchivedWalCandidate {
  path: string;
  gzipped: boolean;
  /** A `.partial` segment is shorter than a segment and is zero-extended by readers. */
  partial: boolean;
}

/**
 * The files of `archiveDir` tried for `walFileName`, in pg_probackup's order (catalog-format §12.4):
 * a segment is looked for as `<seg>.gz`, `<seg>`, then (when `includePartial`) `<seg>.gz.partial`,
 * `<seg>.partial`; history and backup history files only under their own name.
 */
export function archivedWalCandidates(
  archiveDir: string,
  walFileName: string,
  includePartial: boolean,
): ArchivedWalCandidate[] {
  const base = posix.join(archiveDir, walFileName);
  if (!isWalSegmentName(walFileName)) return [{ path: base, gzipped: false, partial: false }];
  const candidates: ArchivedWalCandidate[] = [
    { path: `${base}.gz`, gzipped: true, partial: false },
    { path: base, gzipped: false, partial: false },
  ];
  if (includePartial) {
    candidates.push(
      { path: `${base}.gz.partial`, gzipped: true, partial: true },
      { path: `${base}.partial`, gzipped: false, partial: true },
    );
  }
  return candidates;
}

const systemErrorMessages = getSystemErrorMap();

/**
 * The C library's wording of a failed file call (`No such file or directory`), which pg_probackup
 * puts after the path in its messages; the error's own text when it carries no errno.
 */
export function describeIoError(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'errno' in error) {
    const errno = (error as { errno: unknown }).errno;
    const entry = typeof errno === 'number' ? systemErrorMessages.get(errno) : undefined;
    if (entry) return entry[1].charAt(0).toUpperCase() + entry[1].slice(1);
  }
  const code = storageErrorCode(error);
  return code === 'ENOENT' ? 'No such file or directory' : errorText(error);
}

/** Whether a failed storage call failed because the path does not exist. */
export function isMissingFileError(error: unknown): boolean {
  return storageErrorCode(error) === 'ENOENT';
}
