import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { copyPageRange } from '../../commands/backup/dataFileCopy.js';
import { checkRelationFile } from '../../commands/checkdb/blockValidation.js';
import { readExistingPages } from '../../commands/restore/existingPages.js';
import { isStrataError } from '../../errors.js';
import { createMemoryLogger } from '../../log.js';
import { loadPageCodec, type PageCompressAlgorithm } from '../../format/compression.js';
import { crc32cFinal, crc32cInit, crc32cUpdate } from '../../format/crc32c.js';
import { isLocalProcessAlive } from '../../storage/local/localProcesses.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import type { ReadHandle, WriteHandle } from '../../storage/storage.js';
import {
  AGENT_MAGIC,
  AGENT_PROTOCOL_VERSION,
  FrameDecoder,
  FrameKind,
  encodeFrameParts,
  type Frame,
} from '../protocol/frames.js';
import type {
  AgentArgs,
  AgentErrorPayload,
  AgentHello,
  AgentOp,
  AgentResult,
  AgentStats,
} from '../protocol/ops.js';
import { PageWorkerPool } from './pageWorkers.js';
import { decodeValue, encodeValueParts, type WireValue } from '../protocol/values.js';

/** Streamed reads (readFile) send the content in DATA frames of this size. */
const DATA_CHUNK_BYTES = 1024 * 1024;

/** LocalStorage that counts the bytes it reads and writes, for the agent's `stats`. */
class CountingStorage extends LocalStorage {
  constructor(private readonly stats: AgentStats) {
    super();
  }

  override async readFile(path: string): Promise<Buffer> {
    const data = await super.readFile(path);
    this.stats.fileBytesRead += data.length;
    return data;
  }

  override async writeFile(
    path: string,
    data: Buffer | string,
    options?: Parameters<LocalStorage['writeFile']>[2],
  ): Promise<void> {
    await super.writeFile(path, data, options);
    this.stats.fileBytesWritten += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  }

  override async openRead(path: string): Promise<ReadHandle> {
    const handle = await super.openRead(path);
    const stats = this.stats;
    return {
      async read(buffer, position, length) {
        const bytesRead = await handle.read(buffer, position, length);
        stats.fileBytesRead += bytesRead;
        return bytesRead;
      },
      close: () => handle.close(),
    };
  }

  override async openWrite(
    path: string,
    options?: Parameters<LocalStorage['openWrite']>[1],
  ): Promise<WriteHandle> {
    const handle = await super.openWrite(path, options);
    const stats = this.stats;
    return {
      async write(data, position) {
        await handle.write(data, position);
        stats.fileBytesWritten += data.length;
      },
      truncate: (sizeBytes) => handle.truncate(sizeBytes),
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  }
}

interface OpenHandle {
  read?: ReadHandle;
  write?: WriteHandle;
  /** Operations on one handle run in the order they arrived (the client pipelines writes). */
  queue: Promise<unknown>;
}

export interface AgentServerOptions {
  /** sha256 hex of the agent file this process runs, reported in HELLO. */
  agentHash: string;
  /** The agent file, started as page worker threads; without it page jobs run on the main thread. */
  workerScript?: string;
}

function errorPayload(error: unknown): AgentErrorPayload {
  if (isStrataError(error)) return { message: error.message, strataCode: error.code };
  if (error instanceof Error) {
    const errno = (error as NodeJS.ErrnoException).code;
    return { message: error.message, ...(typeof errno === 'string' ? { errno } : {}) };
  }
  return { message: String(error) };
}

/**
 * zstd is bundled into the agent file (WebAssembly), loaded on first use; lz4 is a native npm
 * package the file cannot carry, available only where the host can resolve it.
 */
async function availableCodecs(): Promise<PageCompressAlgorithm[]> {
  const codecs: PageCompressAlgorithm[] = ['none', 'zlib', 'pglz', 'zstd'];
  if (
    await loadPageCodec('lz4').then(
      () => true,
      () => false,
    )
  )
    codecs.push('lz4');
  return codecs;
}

/**
 * The agent: serves the operations of `../protocol/ops.ts` on this host's files, reading request
 * frames from `input` and writing answers to `output` (the SSH exec channel's stdin and stdout),
 * until `input` ends. Requests run concurrently; those on one open file run in arrival order.
 */
export async function runAgentServer(
  input: Readable,
  output: Writable,
  options: AgentServerOptions,
): Promise<AgentStats> {
  const stats: AgentStats = {
    channelBytesIn: 0,
    channelBytesOut: 0,
    fileBytesRead: 0,
    fileBytesWritten: 0,
    requests: 0,
  };
  const storage = new CountingStorage(stats);
  const workers = options.workerScript
    ? new PageWorkerPool(options.workerScript, (bytes) => {
        stats.fileBytesRead += bytes;
      })
    : undefined;
  const handles = new Map<number, OpenHandle>();
  let nextHandle = 1;
  let outputFailed = false;

  /** Writes one frame; its payload's buffers are fresh for each answer, so they are written without copying. */
  const send = async (
    kind: FrameKind,
    requestId: number,
    payload: { parts: Buffer[]; byteLength: number },
  ): Promise<void> => {
    if (outputFailed) return;
    const pieces = encodeFrameParts(kind, requestId, payload);
    let flowing = true;
    output.cork();
    for (const piece of pieces) {
      stats.channelBytesOut += piece.length;
      flowing = output.write(piece) && flowing;
    }
    output.uncork();
    if (!flowing) await once(output, 'drain');
  };
  const sendValue = (kind: FrameKind, requestId: number, value: WireValue) =>
    send(kind, requestId, encodeValueParts(value));

  const handleFor = (id: number): OpenHandle => {
    const handle = handles.get(id);
    if (!handle)
      throw Object.assign(new Error(`no open file with handle ${id}`), { code: 'EBADF' });
    return handle;
  };

  /** Runs `work` after every earlier operation on the same handle. */
  const onHandle = <T>(id: number, work: (handle: OpenHandle) => Promise<T>): Promise<T> => {
    const handle = handleFor(id);
    const run = handle.queue.then(() => work(handle));
    handle.queue = run.catch(() => undefined);
    return run;
  };

  const handlers: {
    [K in AgentOp]: (args: AgentArgs<K>, requestId: number) => Promise<AgentResult<K>>;
  } = {
    stat: ({ path, noFollow }) => storage.stat(path, { noFollow }),
    async readFile({ path }, requestId) {
      const handle = await storage.openRead(path);
      let position = 0;
      try {
        for (;;) {
          const chunk = Buffer.allocUnsafe(DATA_CHUNK_BYTES);
          const bytesRead = await handle.read(chunk, position);
          if (bytesRead === 0) break;
          position += bytesRead;
          const data = chunk.subarray(0, bytesRead);
          await send(FrameKind.Data, requestId, { parts: [data], byteLength: data.length });
        }
      } finally {
        await handle.close();
      }
      return { sizeBytes: position };
    },
    async writeFile({ path, data, ...writeOptions }) {
      await storage.writeFile(
        path,
        Buffer.from(data.buffer, data.byteOffset, data.byteLength),
        writeOptions,
      );
      return null;
    },
    async writeFileAtomic({ path, data, ...writeOptions }) {
      await storage.writeFileAtomic(
        path,
        Buffer.from(data.buffer, data.byteOffset, data.byteLength),
        writeOptions,
      );
      return null;
    },
    async openRead({ path, headBytes }) {
      const read = await storage.openRead(path);
      const head = Buffer.allocUnsafe(headBytes);
      let headLength = 0;
      try {
        // One read may return less than asked before the end: read until the head is full or the file ends.
        for (;;) {
          const bytesRead =
            headLength < headBytes
              ? await read.read(head.subarray(headLength), headLength, headBytes - headLength)
              : 0;
          headLength += bytesRead;
          if (bytesRead === 0) break;
        }
      } catch (error) {
        await read.close();
        throw error;
      }
      if (headLength < headBytes) {
        await read.close();
        return { handle: 0, head: head.subarray(0, headLength), ended: true };
      }
      const handle = nextHandle++;
      handles.set(handle, { read, queue: Promise.resolve() });
      return { handle, head, ended: false };
    },
    async openWrite({ path, ...writeOptions }) {
      const write = await storage.openWrite(path, writeOptions);
      const handle = nextHandle++;
      handles.set(handle, { write, queue: Promise.resolve() });
      return { handle };
    },
    read: ({ handle, position, length }) =>
      onHandle(handle, async ({ read }) => {
        if (!read)
          throw Object.assign(new Error(`handle ${handle} is not open for reading`), {
            code: 'EBADF',
          });
        const buffer = Buffer.allocUnsafe(length);
        const bytesRead = await read.read(buffer, position, length);
        return { data: buffer.subarray(0, bytesRead) };
      }),
    write: ({ handle, data, position }) =>
      onHandle(handle, async ({ write }) => {
        if (!write)
          throw Object.assign(new Error(`handle ${handle} is not open for writing`), {
            code: 'EBADF',
          });
        await write.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength), position);
        return null;
      }),
    truncate: ({ handle, sizeBytes }) =>
      onHandle(handle, async ({ write }) => {
        if (!write)
          throw Object.assign(new Error(`handle ${handle} is not open for writing`), {
            code: 'EBADF',
          });
        await write.truncate(sizeBytes);
        return null;
      }),
    syncHandle: ({ handle }) =>
      onHandle(handle, async ({ write }) => {
        if (!write)
          throw Object.assign(new Error(`handle ${handle} is not open for writing`), {
            code: 'EBADF',
          });
        await write.sync();
        return null;
      }),
    close: ({ handle }) =>
      onHandle(handle, async (open) => {
        handles.delete(handle);
        await (open.read ?? open.write)!.close();
        return null;
      }),
    async readDir({ path, withStats }) {
      const entries = await storage.readDir(path);
      if (!withStats) return { entries, stats: undefined };
      const entryStats = await Promise.all(
        entries.map((entry) => storage.stat(`${path}/${entry.name}`).catch(() => null)),
      );
      return { entries, stats: entryStats };
    },
    async mkdir({ path, ...mkdirOptions }) {
      await storage.mkdir(path, mkdirOptions);
      return null;
    },
    async rename({ from, to }) {
      await storage.rename(from, to);
      return null;
    },
    async unlink({ path }) {
      await storage.unlink(path);
      return null;
    },
    async removeTree({ path }) {
      await storage.removeTree(path);
      return null;
    },
    async symlink({ target, path }) {
      await storage.symlink(target, path);
      return null;
    },
    readLink: async ({ path }) => ({ target: await storage.readLink(path) }),
    async chmod({ path, mode }) {
      await storage.chmod(path, mode);
      return null;
    },
    async syncFile({ path }) {
      await storage.syncFile(path);
      return null;
    },
    async syncDir({ path }) {
      await storage.syncDir(path);
      return null;
    },
    realPath: async ({ path }) => ({ path: await storage.realPath(path) }),
    async fileCrc32c({ path }) {
      const handle = await storage.openRead(path);
      const chunk = Buffer.allocUnsafe(DATA_CHUNK_BYTES);
      let crc = crc32cInit;
      let position = 0;
      try {
        for (;;) {
          const bytesRead = await handle.read(chunk, position);
          if (bytesRead === 0) break;
          crc = crc32cUpdate(crc, chunk.subarray(0, bytesRead));
          position += bytesRead;
        }
      } finally {
        await handle.close();
      }
      return { crc: crc32cFinal(crc), sizeBytes: position };
    },
    pageRange: (job) => (workers ? workers.run(job) : copyPageRange(storage, job)),
    stats: () => Promise.resolve({ ...stats }),
    async existingPages({ path, nBlocks, ...request }) {
      const pages = await readExistingPages(storage, path, nBlocks, request, undefined);
      if (pages.mode === 'lsn') return { mode: 'lsn', valid: pages.valid };
      return {
        mode: 'checksum',
        checksums: new Uint8Array(pages.checksums.buffer),
        lsns: new Uint8Array(pages.lsns.buffer),
      };
    },
    async checkRelationFile({ checksumsEnabled, ...file }) {
      const logger = createMemoryLogger();
      const check = await checkRelationFile(storage, file, checksumsEnabled, logger);
      return {
        ...check,
        messages: logger.records.map(({ level, message }) => ({ level, message })),
      };
    },
    processAlive: ({ pid }) => Promise.resolve({ alive: isLocalProcessAlive(pid) }),
  };

  const serve = async (frame: Frame): Promise<void> => {
    stats.requests++;
    try {
      const request = decodeValue(frame.payload) as { op: AgentOp; args: AgentArgs<AgentOp> };
      const handler = handlers[request.op] as
        ((args: unknown, requestId: number) => Promise<unknown>) | undefined;
      if (!handler) throw new Error(`unknown agent operation "${String(request.op)}"`);
      const result = await handler(request.args, frame.requestId);
      await sendValue(FrameKind.Result, frame.requestId, result as WireValue);
    } catch (error) {
      await sendValue(
        FrameKind.Error,
        frame.requestId,
        errorPayload(error) as unknown as WireValue,
      );
    }
  };

  output.on('error', () => {
    // The channel is gone (the client disconnected): nothing can be answered any more.
    outputFailed = true;
    input.destroy();
  });

  const hello: AgentHello = {
    magic: AGENT_MAGIC,
    protocol: AGENT_PROTOCOL_VERSION,
    agentHash: options.agentHash,
    nodeVersion: process.versions.node,
    pid: process.pid,
    codecs: await availableCodecs(),
  };
  await sendValue(FrameKind.Hello, 0, hello as unknown as WireValue);

  const decoder = new FrameDecoder();
  const running = new Set<Promise<void>>();
  for await (const chunk of input as AsyncIterable<Buffer>) {
    stats.channelBytesIn += chunk.length;
    for (const frame of decoder.push(chunk)) {
      if (frame.kind !== FrameKind.Request) continue;
      const served = serve(frame);
      running.add(served);
      void served.finally(() => running.delete(served));
    }
  }
  await Promise.allSettled(running);
  for (const handle of handles.values())
    await (handle.read ?? handle.write)?.close().catch(() => undefined);
  handles.clear();
  await workers?.close();
  return stats;
}
