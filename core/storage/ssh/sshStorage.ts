import { compressPage, loadPageCodec } from '../../format/compression.js';
import { BLCKSZ } from '../../format/page.js';
import type {
  ExistingPagesReply,
  ExistingPagesRequest,
  PageRangeReply,
  PageRangeRequest,
  RelationCheckReply,
  RelationCheckRequest,
} from '../../remote/protocol/ops.js';
import type { AgentSession } from '../../remote/session.js';
import type {
  DirEntry,
  FileStat,
  HostProcesses,
  ReadHandle,
  Storage,
  WriteHandle,
  WriteOptions,
} from '../storage.js';

/** Files up to this size travel in one request; larger ones through a pipelined write handle. */
const SINGLE_REQUEST_BYTES = 4 * 1024 * 1024;
/** Writes a handle may have in flight before `write` waits for the oldest answer. */
const WRITE_WINDOW_BYTES = 16 * 1024 * 1024;
const WRITE_CHUNK_BYTES = 1024 * 1024;
/**
 * How long a stat fetched with a directory listing answers a later `stat` of that entry (until a
 * change made through this storage). A backup lists PGDATA and then copies it smallest file
 * first: the copy's stat of a file is answered without a round trip; sizes that change meanwhile
 * are handled as for a local copy (a file read to its end, a short read where it shrank).
 */
const LISTED_STAT_TTL_MS = 10_000;
/** What `openRead` reads along with the open: most PGDATA files that are not relations are smaller. */
const OPEN_HEAD_BYTES = 256 * 1024;
const RECORD_HEADER_BYTES = 8;

interface ListedStat {
  stat: FileStat | null;
  expiresMs: number;
}

/**
 * A write handle whose writes are pipelined: `write` returns once the request is on its way (the
 * agent applies one handle's operations in order), so a stream of writes costs no round trip
 * each. The first failure is reported by the next call on the handle, at the latest by `close`,
 * as pg_probackup's remote writes report theirs at fio_close.
 */
class PipelinedWriteHandle implements WriteHandle {
  private readonly inFlight: Array<{ sizeBytes: number; result: Promise<unknown> }> = [];
  private inFlightBytes = 0;
  private failure: unknown;

  constructor(
    private readonly session: AgentSession,
    private readonly handle: number,
  ) {}

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private async settle(): Promise<void> {
    while (this.inFlight.length > 0) {
      const oldest = this.inFlight.shift()!;
      this.inFlightBytes -= oldest.sizeBytes;
      await oldest.result;
    }
    this.throwIfFailed();
  }

  async write(data: Buffer, position?: number): Promise<void> {
    this.throwIfFailed();
    const { sent, result } = this.session.send('write', {
      handle: this.handle,
      data,
      ...(position !== undefined ? { position } : {}),
    });
    const tracked = result.catch((error: unknown) => {
      this.failure ??= error;
    });
    this.inFlight.push({ sizeBytes: data.length, result: tracked });
    this.inFlightBytes += data.length;
    await sent;
    while (this.inFlightBytes > WRITE_WINDOW_BYTES) {
      const oldest = this.inFlight.shift()!;
      this.inFlightBytes -= oldest.sizeBytes;
      await oldest.result;
    }
    this.throwIfFailed();
  }

  async truncate(sizeBytes: number): Promise<void> {
    await this.settle();
    await this.session.request('truncate', { handle: this.handle, sizeBytes });
  }

  async sync(): Promise<void> {
    await this.settle();
    await this.session.request('syncHandle', { handle: this.handle });
  }

  async close(): Promise<void> {
    await Promise.all(this.inFlight.map((entry) => entry.result));
    this.inFlight.length = 0;
    this.inFlightBytes = 0;
    await this.session.request('close', { handle: this.handle });
    this.throwIfFailed();
  }
}

/**
 * A read handle that holds the file's first bytes (read when it was opened), and, once reads run
 * sequentially, asks for the next chunk while the caller works on the current one, so a streamed
 * file costs no round trip per chunk and a small file none after opening.
 */
class ReadAheadHandle implements ReadHandle {
  private nextPosition = -1;
  private sequentialReads = 0;
  private ahead: { position: number; length: number; data: Promise<Uint8Array> } | undefined;

  constructor(
    private readonly session: AgentSession,
    /** 0 when the agent closed the file already: all of it is in `head`. */
    private readonly handle: number,
    private readonly head: Uint8Array,
  ) {}

  private fetch(position: number, length: number): Promise<Uint8Array> {
    return this.session
      .request('read', { handle: this.handle, position, length })
      .then((reply) => reply.data);
  }

  async read(buffer: Buffer, position: number, length = buffer.length): Promise<number> {
    if (position + length <= this.head.length || (this.handle === 0 && position >= 0)) {
      const data = this.head.subarray(
        Math.min(position, this.head.length),
        Math.min(position + length, this.head.length),
      );
      buffer.set(data, 0);
      this.nextPosition = position + data.length;
      return data.length;
    }
    let data: Uint8Array;
    const ahead = this.ahead;
    this.ahead = undefined;
    if (ahead && ahead.position === position && ahead.length === length) {
      data = await ahead.data;
    } else {
      ahead?.data.catch(() => undefined);
      data = await this.fetch(position, length);
    }
    buffer.set(data, 0);
    this.sequentialReads = position === this.nextPosition ? this.sequentialReads + 1 : 0;
    this.nextPosition = position + data.length;
    if (this.sequentialReads >= 1 && data.length === length) {
      const next = {
        position: this.nextPosition,
        length,
        data: this.fetch(this.nextPosition, length),
      };
      next.data.catch(() => undefined);
      this.ahead = next;
    }
    return data.length;
  }

  async close(): Promise<void> {
    await this.ahead?.data.catch(() => undefined);
    this.ahead = undefined;
    if (this.handle !== 0) await this.session.request('close', { handle: this.handle });
  }
}

/**
 * Storage on a remote host, served by the Strata agent over one SSH connection (core/remote). Every
 * call is one request on the shared channel, so parallel callers (`-j N`) run in parallel; writes
 * are pipelined and sequential reads read ahead. Beyond the Storage contract it runs work next to
 * the data: `fileCrc32c` and `copyPageRange` (the backup's page reading, checks, selection and
 * compression), so only their results cross the network.
 */
export class SshStorage implements Storage {
  readonly kind = 'ssh' as const;
  private readonly listedStats = new Map<string, ListedStat>();

  private readonly processes: HostProcesses;

  constructor(readonly session: AgentSession) {
    this.processes = {
      ownPid: session.hello.pid,
      isAlive: async (pid) => (await session.request('processAlive', { pid })).alive,
    };
  }

  processesAt(): HostProcesses {
    return this.processes;
  }

  /** Files of the remote host, even when it is this one: they are reached through the agent. */
  localPath(): undefined {
    return undefined;
  }

  /** `user@host:port` of the agent. */
  get description(): string {
    return this.session.description;
  }

  private forgetListedStats(): void {
    this.listedStats.clear();
  }

  async stat(path: string, options?: { noFollow?: boolean }): Promise<FileStat | null> {
    const noFollow = options?.noFollow ?? false;
    if (!noFollow) {
      const listed = this.listedStats.get(path);
      if (listed && listed.expiresMs >= Date.now()) return listed.stat;
      if (listed) this.listedStats.delete(path);
    }
    return this.session.request('stat', { path, noFollow });
  }

  async readFile(path: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    const { sizeBytes } = await this.session.request('readFile', { path }, (chunk) =>
      chunks.push(chunk),
    );
    return Buffer.concat(chunks, sizeBytes);
  }

  async writeFile(path: string, data: Buffer | string, options: WriteOptions = {}): Promise<void> {
    this.forgetListedStats();
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length <= SINGLE_REQUEST_BYTES) {
      await this.session.request('writeFile', { path, data: bytes, ...options });
      return;
    }
    const handle = await this.openWrite(path, { ...options, truncate: true });
    try {
      for (let offset = 0; offset < bytes.length; offset += WRITE_CHUNK_BYTES) {
        await handle.write(bytes.subarray(offset, offset + WRITE_CHUNK_BYTES), offset);
      }
      if (options.sync) await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async writeFileAtomic(
    path: string,
    data: Buffer | string,
    options: { mode?: number; tmpSuffix?: string; sync?: boolean } = {},
  ): Promise<void> {
    this.forgetListedStats();
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length <= SINGLE_REQUEST_BYTES) {
      await this.session.request('writeFileAtomic', { path, data: bytes, ...options });
      return;
    }
    const tmpPath = path + (options.tmpSuffix ?? '.tmp');
    const sync = options.sync ?? true;
    try {
      await this.writeFile(tmpPath, bytes, { mode: options.mode ?? 0o600, sync });
      await this.rename(tmpPath, path);
    } catch (error) {
      await this.removeTree(tmpPath).catch(() => undefined);
      throw error;
    }
    if (sync) await this.syncDir(path.slice(0, path.lastIndexOf('/')) || '/');
  }

  async openRead(path: string): Promise<ReadHandle> {
    const { handle, head } = await this.session.request('openRead', {
      path,
      headBytes: OPEN_HEAD_BYTES,
    });
    return new ReadAheadHandle(this.session, handle, head);
  }

  async openWrite(
    path: string,
    options: WriteOptions & { truncate?: boolean } = {},
  ): Promise<WriteHandle> {
    this.forgetListedStats();
    // `sync` applies to whole-file writes; a handle is synced by its own `sync()`.
    const { mode, exclusive, truncate } = options;
    const { handle } = await this.session.request('openWrite', { path, mode, exclusive, truncate });
    return new PipelinedWriteHandle(this.session, handle);
  }

  /** Lists a directory; the stats of its entries come along and answer the `stat` that usually follows. */
  async readDir(path: string): Promise<DirEntry[]> {
    const { entries, stats } = await this.session.request('readDir', { path, withStats: true });
    if (stats) {
      const expiresMs = Date.now() + LISTED_STAT_TTL_MS;
      const base = path.endsWith('/') ? path : `${path}/`;
      entries.forEach((entry, index) =>
        this.listedStats.set(`${base}${entry.name}`, { stat: stats[index] ?? null, expiresMs }),
      );
    }
    return entries;
  }

  async mkdir(path: string, options: { mode?: number; recursive?: boolean } = {}): Promise<void> {
    this.forgetListedStats();
    await this.session.request('mkdir', { path, ...options });
  }

  async rename(from: string, to: string): Promise<void> {
    this.forgetListedStats();
    await this.session.request('rename', { from, to });
  }

  async unlink(path: string): Promise<void> {
    this.forgetListedStats();
    await this.session.request('unlink', { path });
  }

  async removeTree(path: string): Promise<void> {
    this.forgetListedStats();
    await this.session.request('removeTree', { path });
  }

  async symlink(target: string, path: string): Promise<void> {
    this.forgetListedStats();
    await this.session.request('symlink', { target, path });
  }

  async readLink(path: string): Promise<string> {
    return (await this.session.request('readLink', { path })).target;
  }

  async chmod(path: string, mode: number): Promise<void> {
    this.forgetListedStats();
    await this.session.request('chmod', { path, mode });
  }

  async syncFile(path: string): Promise<void> {
    await this.session.request('syncFile', { path });
  }

  async syncDir(path: string): Promise<void> {
    await this.session.request('syncDir', { path });
  }

  async realPath(path: string): Promise<string> {
    return (await this.session.request('realPath', { path })).path;
  }

  /** CRC-32C of a file's content, computed on the remote host. */
  async fileCrc32c(path: string): Promise<{ crc: number; sizeBytes: number }> {
    return this.session.request('fileCrc32c', { path });
  }

  /** An incremental restore's per-block look at an existing destination file, made on the remote host. */
  existingPages(request: ExistingPagesRequest): Promise<ExistingPagesReply> {
    return this.session.request('existingPages', request);
  }

  /** checkdb's block validation of one relation segment, made on the remote host. */
  checkRelationFile(request: RelationCheckRequest): Promise<RelationCheckReply> {
    return this.session.request('checkRelationFile', request);
  }

  /**
   * One block range of a relation segment read, checked, selected and compressed on the remote
   * host (`copyPageRange` there); the same records and header entries as a local copy. A codec the
   * agent cannot load (lz4 is a native package the agent file cannot carry) is applied here, to
   * the pages the agent selected.
   */
  async copyPageRange(job: PageRangeRequest): Promise<PageRangeReply> {
    if (this.session.hello.codecs.includes(job.compressAlgorithm))
      return this.session.request('pageRange', job);
    const reply = await this.session.request('pageRange', { ...job, compressAlgorithm: 'none' });
    await loadPageCodec(job.compressAlgorithm);
    return recompressRecords(reply, job.compressAlgorithm, job.compressLevel);
  }
}

/** Re-encodes uncompressed page records with `algorithm`, moving the header entries with them. */
function recompressRecords(
  reply: PageRangeReply,
  algorithm: PageRangeRequest['compressAlgorithm'],
  level: number,
): PageRangeReply {
  const source = Buffer.from(
    reply.records.buffer,
    reply.records.byteOffset,
    reply.records.byteLength,
  );
  const parts: Buffer[] = [];
  const positions = new Map<number, number>();
  let written = 0;
  for (let offset = 0; offset < source.length;) {
    const blockNo = source.readUInt32LE(offset);
    const payloadBytes = source.readInt32LE(offset + 4);
    const page = source.subarray(
      offset + RECORD_HEADER_BYTES,
      offset + RECORD_HEADER_BYTES + payloadBytes,
    );
    const payload = payloadBytes === BLCKSZ ? (compressPage(page, algorithm, level) ?? page) : page;
    const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    header.writeUInt32LE(blockNo, 0);
    header.writeInt32LE(payload.length, 4);
    positions.set(offset, written);
    parts.push(header, payload);
    written += RECORD_HEADER_BYTES + payload.length;
    offset += RECORD_HEADER_BYTES + payloadBytes;
  }
  return {
    ...reply,
    records: Buffer.concat(parts, written),
    headers: reply.headers.map((entry) => ({
      ...entry,
      pos: positions.get(entry.pos) ?? entry.pos,
    })),
  };
}
