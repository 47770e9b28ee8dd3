import type { PageHeaderEntry } from '../../catalog/types.js';
import { StrataError, errorText } from '../../errors.js';
import type { Lsn } from '../../format/lsn.js';
import { BLCKSZ, RELSEG_SIZE, checkDataPage } from '../../format/page.js';
import type { ExistingPagesReply } from '../../remote/protocol/ops.js';
import { remoteStorageFor } from '../../storage/ssh/splitStorage.js';
import type { Storage } from '../../storage/storage.js';

const PAGES_PER_READ = 16;

/** How an incremental restore decides that a page already in PGDATA can stay (§15.3). */
export interface ExistingPagesRequest {
  mode: 'checksum' | 'lsn';
  /**
   * `checksum`: the destination backup's stop LSN (a page from after it cannot be the backup's);
   * `lsn`: the shift LSN.
   */
  limitLsn: Lsn;
  /** The destination backup's data checksums: pd_checksum must then match the page. */
  checksumsEnabled: boolean;
  /** Segment number of the file, for the absolute block numbers the checksum is keyed on. */
  segno: number;
}

/** What is known about the valid pages of one existing data file. */
export type ExistingPages =
  | {
      mode: 'checksum';
      /** Computed checksum of each valid page; 0 (never a checksum) for the others. */
      checksums: Uint16Array;
      lsns: BigUint64Array;
    }
  | {
      mode: 'lsn';
      shiftLsn: Lsn;
      /** 1 for a valid page with an LSN at or before the shift LSN. */
      valid: Uint8Array;
    };

/**
 * data.c get_checksum_map / get_lsn_map: reads the first `nBlocks` pages of an existing data file
 * (the caller has already cut or zero-extended it to that length) and records the valid ones — not
 * all zeros, a sane header, a matching checksum when the backup had checksums, an LSN not past
 * `limitLsn`. A file on a remote host is read there by the agent; only the results travel.
 */
export async function readExistingPages(
  storage: Storage,
  path: string,
  nBlocks: number,
  request: ExistingPagesRequest,
  signal: AbortSignal | undefined,
): Promise<ExistingPages> {
  const remote = remoteStorageFor(storage, path);
  if (remote)
    return existingPagesFromReply(
      await remote.existingPages({ path, nBlocks, ...request }),
      request,
    );
  const checksums = new Uint16Array(request.mode === 'checksum' ? nBlocks : 0);
  const lsns = new BigUint64Array(request.mode === 'checksum' ? nBlocks : 0);
  const valid = new Uint8Array(request.mode === 'lsn' ? nBlocks : 0);
  const handle = await storage.openRead(path).catch((error: unknown) => {
    throw new StrataError('io', `Cannot open source file "${path}": ${errorText(error)}`, {
      cause: error,
    });
  });
  try {
    const buffer = Buffer.alloc(PAGES_PER_READ * BLCKSZ);
    for (let first = 0; first < nBlocks; first += PAGES_PER_READ) {
      if (signal?.aborted) throw new StrataError('interrupted', 'Interrupted during page reading');
      const count = Math.min(PAGES_PER_READ, nBlocks - first);
      let filled = 0;
      while (filled < count * BLCKSZ) {
        const read = await handle.read(
          buffer.subarray(filled),
          first * BLCKSZ + filled,
          count * BLCKSZ - filled,
        );
        if (read === 0) break;
        filled += read;
      }
      if (filled < count * BLCKSZ) {
        throw new StrataError(
          'io',
          `Cannot read block ${first + Math.floor(filled / BLCKSZ)} of "${path}": unexpected end of file`,
        );
      }
      for (let index = 0; index < count; index++) {
        const blockNo = first + index;
        const page = buffer.subarray(index * BLCKSZ, (index + 1) * BLCKSZ);
        const check = checkDataPage(
          page,
          request.segno * RELSEG_SIZE + blockNo,
          request.checksumsEnabled,
        );
        if (!check.ok || check.isZero || check.lsn > request.limitLsn) continue;
        if (request.mode === 'checksum') {
          checksums[blockNo] = check.checksum;
          lsns[blockNo] = check.lsn;
        } else {
          valid[blockNo] = 1;
        }
      }
    }
  } finally {
    await handle.close();
  }
  return request.mode === 'checksum'
    ? { mode: 'checksum', checksums, lsns }
    : { mode: 'lsn', shiftLsn: request.limitLsn, valid };
}

/** The agent's per-block arrays (raw little-endian bytes on the wire) as ExistingPages. */
function existingPagesFromReply(
  reply: ExistingPagesReply,
  request: ExistingPagesRequest,
): ExistingPages {
  if (reply.mode === 'lsn')
    return { mode: 'lsn', shiftLsn: request.limitLsn, valid: new Uint8Array(reply.valid) };
  // Copies: the reply's bytes may start at an odd offset of the frame they arrived in.
  return {
    mode: 'checksum',
    checksums: new Uint16Array(new Uint8Array(reply.checksums).buffer),
    lsns: new BigUint64Array(new Uint8Array(reply.lsns).buffer),
  };
}

/**
 * Whether block `blockNo` of the existing file can stay instead of the page a chain member
 * stores: in `checksum` mode when the member's page_header_map entry has the page's checksum and
 * LSN; in `lsn` mode when the page is valid up to the shift LSN and the member ended at or before
 * it (data.c restore_data_file_internal).
 */
export function keepsExistingPage(
  existing: ExistingPages,
  blockNo: number,
  header: PageHeaderEntry | undefined,
  sourceStopLsn: Lsn | undefined,
): boolean {
  if (existing.mode === 'checksum') {
    if (header === undefined || blockNo >= existing.checksums.length) return false;
    const checksum = existing.checksums[blockNo]!;
    return checksum !== 0 && header.checksum === checksum && header.lsn === existing.lsns[blockNo];
  }
  return (
    sourceStopLsn !== undefined &&
    sourceStopLsn <= existing.shiftLsn &&
    blockNo < existing.valid.length &&
    existing.valid[blockNo] === 1
  );
}
