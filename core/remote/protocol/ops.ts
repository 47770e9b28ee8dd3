import type { PageCompressAlgorithm } from '../../format/compression.js';
import type { LogLevel } from '../../log.js';
import type { DirEntry, FileStat } from '../../storage/storage.js';

/**
 * The operations the agent serves, with their arguments and results: the `Storage` contract
 * (paths are absolute on the agent's host), plus work done next to the data so that only needed
 * bytes cross the network: a file's CRC-32C, and a relation segment's page range read, checked,
 * selected and compressed there (`pageRange`, the job of core/commands/backup/dataFileCopy.ts).
 */

/** One block range of a relation segment (the agent runs `copyPageRange` on it). */
export interface PageRangeRequest {
  sourcePath: string;
  displayPath: string;
  segno: number;
  checksumsEnabled: boolean;
  skipBlockValidation: boolean;
  compressAlgorithm: PageCompressAlgorithm;
  compressLevel: number;
  keepPagesFromLsn?: bigint | undefined;
  firstBlock: number;
  endBlock: number | undefined;
  blocks: Uint32Array | undefined;
  limitBlocks: number;
}

/** One page_header_map entry of a stored page (catalog-format §7.3.6), `pos` relative to the records. */
export interface PageHeaderWire {
  lsn: bigint;
  block: number;
  pos: number;
  checksum: number;
}

export interface PageRangeReply {
  /** The range's page records as the backup file lays them out. */
  records: Uint8Array;
  headers: PageHeaderWire[];
  endBlock: number;
  ended: boolean;
}

/**
 * An incremental restore's look at an existing data file of the destination (restore
 * existingPages.ts `readExistingPages`, data.c get_checksum_map / get_lsn_map), made on the host
 * that holds it so that only the per-block results cross the network.
 */
export interface ExistingPagesRequest {
  path: string;
  nBlocks: number;
  mode: 'checksum' | 'lsn';
  limitLsn: bigint;
  checksumsEnabled: boolean;
  segno: number;
}

/** Per-block results as raw little-endian arrays: u16 checksums and u64 LSNs, or u8 flags. */
export type ExistingPagesReply =
  | { mode: 'checksum'; checksums: Uint8Array; lsns: Uint8Array }
  | { mode: 'lsn'; valid: Uint8Array };

/** checkdb's block validation of one relation segment (checkdb blockValidation.ts), run there. */
export interface RelationCheckRequest {
  absolutePath: string;
  segno: number;
  sizeBytes: number;
  checksumsEnabled: boolean;
}

export interface RelationCheckReply {
  readable: boolean;
  blocksChecked: number;
  corruptBlocks: Array<{ path: string; blockNo: number; detail: string }>;
  /** What the check logged there, replayed into this side's log in order. */
  messages: Array<{ level: LogLevel; message: string }>;
}

/** What the agent did, for byte accounting (`npm run bench`, tests proving the data went through SSH). */
export interface AgentStats {
  /** Bytes of frames the agent received and sent on its channel. */
  channelBytesIn: number;
  channelBytesOut: number;
  /** Bytes read from and written to files on the agent's host. */
  fileBytesRead: number;
  fileBytesWritten: number;
  requests: number;
}

export interface AgentHello {
  magic: string;
  protocol: number;
  /** Hash of the agent bundle the process runs (sha256 hex). */
  agentHash: string;
  nodeVersion: string;
  pid: number;
  /** Page codecs this agent can load (lz4 is a native npm package the agent file cannot carry). */
  codecs: PageCompressAlgorithm[];
}

export interface AgentOps {
  stat: { args: { path: string; noFollow: boolean }; result: FileStat | null };
  /** The content comes as DATA frames; the result closes the stream. */
  readFile: { args: { path: string }; result: { sizeBytes: number } };
  writeFile: {
    args: { path: string; data: Uint8Array; mode?: number; exclusive?: boolean; sync?: boolean };
    result: null;
  };
  writeFileAtomic: {
    args: { path: string; data: Uint8Array; mode?: number; tmpSuffix?: string; sync?: boolean };
    result: null;
  };
  /**
   * Opens a file and reads its first `headBytes` in the same round trip. A file that ends within
   * them is closed again at once (`handle` 0): a small file costs one request.
   */
  openRead: {
    args: { path: string; headBytes: number };
    result: { handle: number; head: Uint8Array; ended: boolean };
  };
  openWrite: {
    args: { path: string; mode?: number; exclusive?: boolean; truncate?: boolean };
    result: { handle: number };
  };
  read: {
    args: { handle: number; position: number; length: number };
    result: { data: Uint8Array };
  };
  write: { args: { handle: number; data: Uint8Array; position?: number }; result: null };
  truncate: { args: { handle: number; sizeBytes: number }; result: null };
  syncHandle: { args: { handle: number }; result: null };
  close: { args: { handle: number }; result: null };
  /** With `withStats`, the stat (following symlinks) of every entry, null for one that vanished. */
  readDir: {
    args: { path: string; withStats: boolean };
    result: { entries: DirEntry[]; stats: Array<FileStat | null> | undefined };
  };
  mkdir: { args: { path: string; mode?: number; recursive?: boolean }; result: null };
  rename: { args: { from: string; to: string }; result: null };
  unlink: { args: { path: string }; result: null };
  removeTree: { args: { path: string }; result: null };
  symlink: { args: { target: string; path: string }; result: null };
  readLink: { args: { path: string }; result: { target: string } };
  chmod: { args: { path: string; mode: number }; result: null };
  syncFile: { args: { path: string }; result: null };
  syncDir: { args: { path: string }; result: null };
  realPath: { args: { path: string }; result: { path: string } };
  fileCrc32c: { args: { path: string }; result: { crc: number; sizeBytes: number } };
  pageRange: { args: PageRangeRequest; result: PageRangeReply };
  existingPages: { args: ExistingPagesRequest; result: ExistingPagesReply };
  checkRelationFile: { args: RelationCheckRequest; result: RelationCheckReply };
  stats: { args: Record<string, never>; result: AgentStats };
  /** Signal 0 on the agent's host (lock files and postmaster.pid name its processes). */
  processAlive: { args: { pid: number }; result: { alive: boolean } };
}

export type AgentOp = keyof AgentOps;
export type AgentArgs<K extends AgentOp> = AgentOps[K]['args'];
export type AgentResult<K extends AgentOp> = AgentOps[K]['result'];

/** An ERROR frame's payload: enough to rebuild the error the caller would have seen locally. */
export interface AgentErrorPayload {
  message: string;
  /** errno code ('ENOENT', 'EEXIST', …) of a failed file operation. */
  errno?: string;
  /** A StrataError's code. */
  strataCode?: string;
}
