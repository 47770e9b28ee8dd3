/**
 * A WAL receiver for `backup --stream`: a physical replication connection that streams WAL into
 * the backup's `database/pg_wal` (cli-behaviour.md §5.2, catalog-format.md §7.2).
 *
 * `pg` authenticates the connection (trust, password, md5, SCRAM, TLS) and runs the replication
 * commands; START_REPLICATION is submitted as a `pg` Submittable, which receives the CopyData
 * messages of the CopyBoth stream, and our CopyData / CopyDone go to the connection's socket.
 */
import type pg from 'pg';
import { StrataError, errorText, isStrataError } from '../errors.js';
import { formatLsn, type Lsn } from '../format/lsn.js';
import { crc32c } from '../format/crc32c.js';
import { historyFileName } from '../format/walNames.js';
import type { Logger } from '../log.js';
import type { Storage } from '../storage/storage.js';
import { connectReplication, serverErrorText, type ConnectionOptions } from './connection.js';
import {
  frameCopyData,
  frameCopyDone,
  parseReplicationMessage,
  postgresClockUs,
  serializeStandbyStatusUpdate,
} from './replicationMessages.js';
import { WalSegmentWriter, type StreamedWalFile } from './walSegmentWriter.js';

export type { StreamedWalFile } from './walSegmentWriter.js';

export interface WalReceiverSlot {
  name: string;
  /** A temporary slot disappears with the replication connection. */
  temporary: boolean;
  /** Create the slot (CREATE_REPLICATION_SLOT … RESERVE_WAL); otherwise it must exist. */
  create: boolean;
}

export interface WalReceiverOptions {
  connection: ConnectionOptions;
  storage: Storage;
  /** Absolute directory for the segments, e.g. the backup's `database/pg_wal`. */
  walDir: string;
  /** Streaming starts at the first byte of the segment holding this LSN. */
  startLsn: Lsn;
  timelineId: number;
  walSegmentSizeBytes: number;
  slot?: WalReceiverSlot;
  expectedSystemIdentifier?: bigint;
  logger: Logger;
  /** Called once if streaming fails while nobody waits on it, so a backup can stop early. */
  onFailure?: (error: StrataError) => void;
}

export interface WalReceiverResult {
  /** Streamed segments in order, each full-size. */
  segments: StreamedWalFile[];
  /** `TTTTTTTT.history` of the streamed timeline, written when it is not 1. */
  historyFile: StreamedWalFile | null;
  /** End of the streamed WAL; everything before it is written and synced. */
  lastFlushLsn: Lsn;
}

/** The walsender drops a receiver silent for wal_sender_timeout (60 s by default). */
const statusIntervalMs = 10_000;
/** Received but not yet written WAL above which the socket is paused (flow control). */
const pauseAboveBytes = 32 * 1024 * 1024;
const resumeBelowBytes = 8 * 1024 * 1024;
/** How long the server gets to confirm the end of the stream once all WAL is written. */
const endOfStreamGraceMs = 10_000;

/** ReplicationSlotValidateName: lower-case letters, digits and underscores, at most NAMEDATALEN-1. */
const slotNamePattern = /^[a-z0-9_]{1,63}$/;

/** Replication commands answer `bytea` columns with the raw bytes; keep every value as text. */
const rawTextTypes = {
  getTypeParser: () => (value: string) => value,
} as unknown as pg.CustomTypesConfig;

interface ReplicationRow {
  [column: string]: string | null;
}

async function runReplicationCommand(
  client: pg.Client,
  command: string,
): Promise<ReplicationRow[]> {
  try {
    const result = await client.query<ReplicationRow>({ text: command, types: rawTextTypes });
    return result.rows;
  } catch (error) {
    throw new StrataError(
      'postgres',
      `Could not send replication command "${command.split(' ')[0] ?? command}": ${serverErrorText(error).trimEnd()}`,
      { cause: error },
    );
  }
}

interface CopyBothEvents {
  started(): void;
  copyData(chunk: Buffer): void;
  serverCopyDone(): void;
  failed(error: unknown): void;
  finished(): void;
}

/**
 * START_REPLICATION as a `pg` Submittable: `pg` hands it the messages of the statement it runs;
 * CopyBothResponse and CopyDone, which `pg` does not route to statements, come from the
 * connection's own events.
 */
class CopyBothQuery implements pg.Submittable {
  private connection: pg.Connection | null = null;
  private readonly onStarted = () => this.events.started();
  private readonly onCopyDone = () => this.events.serverCopyDone();

  constructor(
    private readonly text: string,
    private readonly events: CopyBothEvents,
  ) {}

  submit(connection: pg.Connection): void {
    this.connection = connection;
    connection.on('replicationStart', this.onStarted);
    connection.on('copyDone', this.onCopyDone);
    connection.query(this.text);
  }

  private detach(): void {
    this.connection?.off('replicationStart', this.onStarted);
    this.connection?.off('copyDone', this.onCopyDone);
  }

  handleCopyData(message: { chunk: Buffer }): void {
    this.events.copyData(message.chunk);
  }

  handleError(error: unknown): void {
    this.detach();
    this.events.failed(error);
  }

  handleReadyForQuery(): void {
    this.detach();
    this.events.finished();
  }

  handleRowDescription(): void {
    // The next-timeline result set after a timeline ends: the stream stops either way.
  }

  handleDataRow(): void {
    // See handleRowDescription.
  }

  handleCommandComplete(): void {
    // ReadyForQuery follows and ends the statement.
  }

  handleEmptyQuery(): void {
    // Not sent for START_REPLICATION.
  }

  handlePortalSuspended(): void {
    // Not sent for the simple query protocol.
  }

  handleCopyInResponse(): void {
    // Not sent for START_REPLICATION.
  }
}

interface LsnWaiter {
  lsn: Lsn;
  resolve: () => void;
  reject: (error: StrataError) => void;
  timer: NodeJS.Timeout;
}

function targetNotStreamedError(lsn: Lsn, timeoutMs: number): StrataError {
  return new StrataError(
    'wal',
    `Target LSN ${formatLsn(lsn)} could not be streamed in ${Math.round(timeoutMs / 1000)} seconds`,
  );
}

function tliHex(timelineId: number | string): string {
  return Number(timelineId).toString(16).toUpperCase();
}

export class WalReceiver {
  private readonly client: pg.Client;
  private readonly writer: WalSegmentWriter;
  private readonly options: WalReceiverOptions;
  private readonly historyFile: StreamedWalFile | null;
  private writeChain: Promise<void> = Promise.resolve();
  private unwrittenBytes = 0;
  private paused = false;
  /** Set by stopAt/abort: WAL arriving from now on is not kept. */
  private stopping = false;
  /** Our half of the CopyBoth stream is over: no CopyData may follow. */
  private copyDoneSent = false;
  private closed = false;
  private failure: StrataError | null = null;
  private waiters: LsnWaiter[] = [];
  private statusTimer: NodeJS.Timeout | undefined;
  private endOfStream: { resolve: () => void } | null = null;
  private streamFinished = false;

  private constructor(
    client: pg.Client,
    writer: WalSegmentWriter,
    options: WalReceiverOptions,
    historyFile: StreamedWalFile | null,
  ) {
    this.client = client;
    this.writer = writer;
    this.options = options;
    this.historyFile = historyFile;
  }

  /**
   * Connects in replication mode, checks system identifier and timeline (IDENTIFY_SYSTEM),
   * creates the slot if asked, writes the timeline history file, and starts streaming; resolves
   * once the server has accepted START_REPLICATION.
   */
  static async start(options: WalReceiverOptions): Promise<WalReceiver> {
    if (options.slot && !slotNamePattern.test(options.slot.name)) {
      throw new StrataError(
        'usage',
        `Invalid replication slot name "${options.slot.name}": use lower case letters, numbers and underscores, at most 63`,
      );
    }
    const client = await connectReplication(options.connection);
    try {
      const historyFile = await WalReceiver.prepare(client, options);
      const segmentSize = BigInt(options.walSegmentSizeBytes);
      const streamStart = options.startLsn - (options.startLsn % segmentSize);
      const writer = new WalSegmentWriter({
        storage: options.storage,
        walDir: options.walDir,
        timelineId: options.timelineId,
        segmentSizeBytes: options.walSegmentSizeBytes,
        startLsn: streamStart,
      });
      const receiver = new WalReceiver(client, writer, options, historyFile);
      await receiver.startStreaming(streamStart);
      return receiver;
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  private static async prepare(
    client: pg.Client,
    options: WalReceiverOptions,
  ): Promise<StreamedWalFile | null> {
    const [identity] = await runReplicationCommand(client, 'IDENTIFY_SYSTEM');
    if (!identity) throw new StrataError('postgres', 'IDENTIFY_SYSTEM returned no row');
    const systemId = BigInt(identity['systemid'] ?? '0');
    const timelineId = Number(identity['timeline'] ?? '0');
    const expected = options.expectedSystemIdentifier;
    if (expected !== undefined && systemId !== expected) {
      throw new StrataError(
        'wal',
        `System identifier mismatch. Connected PostgreSQL instance has system id: ${systemId}. Expected: ${expected}.`,
      );
    }
    if (timelineId !== options.timelineId) {
      throw new StrataError(
        'wal',
        `Timeline identifier mismatch. Connected PostgreSQL instance has timeline id: ${tliHex(timelineId)}. ` +
          `Expected: ${tliHex(options.timelineId)}.`,
      );
    }
    const slot = options.slot;
    if (slot?.create) {
      const [version] = await runReplicationCommand(client, 'SHOW server_version_num');
      const versionNum = Number(version?.['server_version_num'] ?? '0');
      // PostgreSQL 15 introduced the parenthesized option list; older servers know only the keyword.
      const reserveWal = versionNum >= 150000 ? '(RESERVE_WAL)' : 'RESERVE_WAL';
      const temporary = slot.temporary ? ' TEMPORARY' : '';
      try {
        await runReplicationCommand(
          client,
          `CREATE_REPLICATION_SLOT ${slot.name}${temporary} PHYSICAL ${reserveWal}`,
        );
      } catch (error) {
        const reason = serverErrorText(isStrataError(error) ? error.cause : error).trimEnd();
        throw new StrataError(
          'wal',
          `Couldn't create physical replication slot ${slot.name}: ${reason}`,
          {
            cause: error,
          },
        );
      }
    }
    await options.storage.mkdir(options.walDir, { recursive: true });
    if (options.timelineId <= 1) return null;
    const content = await readTimelineHistory(client, options.timelineId);
    if (content === null) {
      throw new StrataError(
        'wal',
        `Could not read the history file of timeline ${options.timelineId} from the server`,
      );
    }
    const name = historyFileName(options.timelineId);
    const data = Buffer.from(content, 'utf8');
    await options.storage.writeFileAtomic(`${options.walDir}/${name}`, data, {
      mode: 0o600,
      sync: true,
    });
    return { name, sizeBytes: data.length, crc: crc32c(data) };
  }

  /**
   * Submits START_REPLICATION and resolves once the server streams: the walsender sends its
   * CopyBothResponse before it validates the start point, so acceptance is only certain with
   * the first CopyData. A status update asking for a reply makes one arrive at once even when
   * there is no WAL to send yet.
   */
  private startStreaming(streamStart: Lsn): Promise<void> {
    const { slot, timelineId, logger } = this.options;
    const slotClause = slot ? `SLOT ${slot.name} ` : '';
    const command = `START_REPLICATION ${slotClause}PHYSICAL ${formatLsn(streamStart)} TIMELINE ${timelineId}`;
    const startFailure = (reason: string, cause?: unknown) =>
      new StrataError(
        'wal',
        `Could not start WAL streaming at ${formatLsn(streamStart)} (timeline ${timelineId}): ${reason}`,
        { cause },
      );
    return new Promise<void>((resolveStarted, rejectStarted) => {
      let confirmed = false;
      const query = new CopyBothQuery(command, {
        started: () => this.sendStatus(true),
        copyData: (chunk) => {
          if (!confirmed) {
            confirmed = true;
            const slotText = slot
              ? ` using${slot.temporary ? ' temporary' : ''} slot ${slot.name}`
              : '';
            logger.verbose(
              `started streaming WAL at ${formatLsn(streamStart)} (timeline ${timelineId})${slotText}`,
            );
            this.statusTimer = setInterval(() => this.sendStatus(false), statusIntervalMs);
            this.statusTimer.unref();
            resolveStarted();
          }
          this.receive(chunk);
        },
        serverCopyDone: () => this.onServerCopyDone(),
        failed: (error) => {
          if (confirmed) this.fail(error);
          else rejectStarted(startFailure(errorText(error), error));
        },
        finished: () => {
          if (confirmed) this.onStreamFinished();
          else rejectStarted(startFailure('the server has no WAL to stream on this timeline'));
        },
      });
      this.client.query(query);
    });
  }

  /** One past the last WAL byte written to the segment files. */
  get writtenLsn(): Lsn {
    return this.writer.position;
  }

  private receive(chunk: Buffer): void {
    if (this.stopping || this.failure) return;
    let message;
    try {
      // pg's parser may reuse the buffer behind `chunk` for the next socket read: copy it.
      message = parseReplicationMessage(Buffer.from(chunk));
    } catch (error) {
      this.fail(error);
      return;
    }
    if (message.kind === 'keepalive') {
      if (message.replyRequested) this.sendStatus(false);
      return;
    }
    const { dataStart, data } = message;
    this.unwrittenBytes += data.length;
    if (!this.paused && this.unwrittenBytes > pauseAboveBytes) {
      this.paused = true;
      this.client.connection.stream.pause();
    }
    this.writeChain = this.writeChain.then(async () => {
      if (this.failure) return;
      try {
        const segmentsBefore = this.writer.segments.length;
        await this.writer.write(dataStart, data);
        if (this.writer.segments.length !== segmentsBefore) this.sendStatus(false);
      } catch (error) {
        this.fail(error);
        return;
      }
      this.unwrittenBytes -= data.length;
      if (this.paused && this.unwrittenBytes < resumeBelowBytes) this.resumeSocket();
      this.settleWaiters();
    });
  }

  private resumeSocket(): void {
    if (!this.paused) return;
    this.paused = false;
    this.client.connection.stream.resume();
  }

  private sendStatus(replyRequested: boolean): void {
    if (this.closed || this.failure || this.copyDoneSent) return;
    const status = serializeStandbyStatusUpdate({
      writeLsn: this.writer.position,
      flushLsn: this.writer.flushedLsn,
      applyLsn: 0n,
      clockUs: postgresClockUs(Date.now()),
      replyRequested,
    });
    this.client.connection.stream.write(frameCopyData(status));
  }

  private settleWaiters(): void {
    const position = this.writer.position;
    const reached = this.waiters.filter((waiter) => waiter.lsn <= position);
    if (reached.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => waiter.lsn > position);
    for (const waiter of reached) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
  }

  /** Ends our half of the CopyBoth stream, once. */
  private sendCopyDone(): void {
    if (this.copyDoneSent || this.closed) return;
    this.copyDoneSent = true;
    this.resumeSocket();
    this.client.connection.stream.write(frameCopyDone());
  }

  /**
   * The server's CopyDone: the answer to ours, or the server ending the stream on its own (its
   * timeline ended), which the protocol asks us to answer; onStreamFinished then tells waiters.
   */
  private onServerCopyDone(): void {
    this.sendCopyDone();
  }

  private onStreamFinished(): void {
    this.streamFinished = true;
    this.endOfStream?.resolve();
    if (this.endOfStream === null && !this.failure) {
      this.fail(
        new StrataError(
          'wal',
          `The server ended WAL streaming of timeline ${this.options.timelineId} at ${formatLsn(this.writer.position)}: ` +
            'the timeline was switched (was the server promoted?)',
        ),
      );
    }
  }

  private fail(error: unknown): void {
    // After closeConnection the socket's end is our own doing, not a failure.
    if (this.failure || this.closed) return;
    const failure = isStrataError(error)
      ? error
      : new StrataError(
          'wal',
          `WAL streaming failed at ${formatLsn(this.writer.position)}: ${errorText(error)}`,
          {
            cause: error,
          },
        );
    this.failure = failure;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(failure);
    }
    this.endOfStream?.resolve();
    this.closeConnection();
    if (waiters.length === 0 && !this.stopping) this.options.onFailure?.(failure);
  }

  private closeConnection(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.statusTimer);
    this.resumeSocket();
    this.client.end().catch(() => undefined);
  }

  /** Resolves once WAL up to `lsn` is written (streaming goes on); rejects on timeout or failure. */
  waitFor(lsn: Lsn, timeoutMs: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.writer.position >= lsn) return Promise.resolve();
    if (this.closed || this.streamFinished) {
      return Promise.reject(
        new StrataError(
          'wal',
          `WAL streaming has already stopped at ${formatLsn(this.writer.position)}, before ${formatLsn(lsn)}`,
        ),
      );
    }
    return new Promise<void>((resolveWait, rejectWait) => {
      const waiter: LsnWaiter = {
        lsn,
        resolve: resolveWait,
        reject: rejectWait,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((other) => other !== waiter);
          rejectWait(targetNotStreamedError(lsn, timeoutMs));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Waits until WAL up to `lsn` is written, then ends the stream (CopyDone), pads and renames the
   * last segment, syncs, and closes the connection. WAL the server sends after that point is not
   * kept. On timeout the stream is aborted and the segment files are left as they are.
   */
  async stopAt(lsn: Lsn, timeoutMs: number): Promise<WalReceiverResult> {
    if (this.writer.position < lsn)
      this.options.logger.info(`Wait for LSN ${formatLsn(lsn)} to be streamed`);
    try {
      await this.waitFor(lsn, timeoutMs);
    } catch (error) {
      await this.abort();
      throw error;
    }
    this.stopping = true;
    if (!this.streamFinished && !this.closed) {
      const ended = new Promise<void>((resolveEnd) => {
        this.endOfStream = { resolve: resolveEnd };
      });
      this.sendCopyDone();
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([
        ended,
        new Promise<void>((resolveGrace) => (grace = setTimeout(resolveGrace, endOfStreamGraceMs))),
      ]);
      clearTimeout(grace);
    }
    await this.writeChain;
    this.closeConnection();
    if (this.failure && this.writer.position < lsn) throw this.failure;
    await this.writer.finish();
    this.options.logger.verbose(
      `finished streaming WAL at ${formatLsn(this.writer.position)} (timeline ${this.options.timelineId})`,
    );
    return {
      segments: [...this.writer.segments],
      historyFile: this.historyFile,
      lastFlushLsn: this.writer.flushedLsn,
    };
  }

  /** Stops streaming without completing the last segment (it stays `.partial`). */
  async abort(): Promise<void> {
    this.stopping = true;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new StrataError('interrupted', 'Interrupted during WAL streaming'));
    }
    this.waiters = [];
    this.closeConnection();
    await this.writeChain;
    await this.writer.abandon();
  }
}

/**
 * TIMELINE_HISTORY's `content` column; null when the server answers with an error (it has no
 * history file for that timeline). A broken connection still throws.
 */
async function readTimelineHistory(client: pg.Client, timelineId: number): Promise<string | null> {
  try {
    const result = await client.query<ReplicationRow>({
      text: `TIMELINE_HISTORY ${timelineId}`,
      types: rawTextTypes,
    });
    return result.rows[0]?.['content'] ?? null;
  } catch (error) {
    if (typeof error === 'object' && error !== null && 'severity' in error) return null;
    throw new StrataError(
      'postgres',
      `Could not send replication command "TIMELINE_HISTORY": ${errorText(error)}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * The content of `TTTTTTTT.history` for a timeline, over a replication connection; null for
 * timeline 1, which has no history, or when the server has no such file.
 */
export async function fetchTimelineHistory(
  connection: ConnectionOptions,
  timelineId: number,
): Promise<string | null> {
  if (timelineId <= 1) return null;
  const client = await connectReplication(connection);
  try {
    return await readTimelineHistory(client, timelineId);
  } finally {
    await client.end().catch(() => undefined);
  }
}
