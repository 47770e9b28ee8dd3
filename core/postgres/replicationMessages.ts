/**
 * The messages of PostgreSQL's streaming replication protocol that travel inside CopyData once
 * `START_REPLICATION … PHYSICAL` has switched the connection to CopyBoth mode (protocol docs,
 * "Streaming Replication Protocol"; walsender.c / walreceiver.c). Pure functions over bytes.
 */
import { StrataError } from '../errors.js';
import type { Lsn } from '../format/lsn.js';

/** Microseconds from the Unix epoch to PostgreSQL's epoch 2000-01-01 (POSTGRES_EPOCH_JDATE). */
const postgresEpochOffsetUs = 946_684_800_000_000n;

/** 'w' XLogData: Byte1 'w', Int64 dataStart, Int64 walEnd, Int64 sendTime, then WAL bytes. */
const xlogDataHeaderBytes = 1 + 8 + 8 + 8;
/** 'k' primary keepalive: Byte1 'k', Int64 walEnd, Int64 sendTime, Byte1 replyRequested. */
const keepaliveBytes = 1 + 8 + 8 + 1;

export interface XLogDataMessage {
  kind: 'xlogData';
  dataStart: Lsn;
  walEnd: Lsn;
  sendTimeUs: bigint;
  data: Buffer;
}

export interface KeepaliveMessage {
  kind: 'keepalive';
  walEnd: Lsn;
  sendTimeUs: bigint;
  replyRequested: boolean;
}

export type ReplicationMessage = XLogDataMessage | KeepaliveMessage;

/** Decodes the payload of one CopyData message sent by a physical walsender. */
export function parseReplicationMessage(payload: Buffer): ReplicationMessage {
  const tag = payload.length > 0 ? String.fromCharCode(payload[0]!) : '';
  if (tag === 'w') {
    if (payload.length < xlogDataHeaderBytes) {
      throw new StrataError('wal', `Streaming header too small: ${payload.length} bytes`);
    }
    return {
      kind: 'xlogData',
      dataStart: payload.readBigUInt64BE(1),
      walEnd: payload.readBigUInt64BE(9),
      sendTimeUs: payload.readBigInt64BE(17),
      data: payload.subarray(xlogDataHeaderBytes),
    };
  }
  if (tag === 'k') {
    if (payload.length < keepaliveBytes) {
      throw new StrataError('wal', `Streaming header too small: ${payload.length} bytes`);
    }
    return {
      kind: 'keepalive',
      walEnd: payload.readBigUInt64BE(1),
      sendTimeUs: payload.readBigInt64BE(9),
      replyRequested: payload[17] !== 0,
    };
  }
  throw new StrataError('wal', `Unrecognized streaming header: "${tag}"`);
}

export interface StandbyStatus {
  /** One past the last WAL byte received and written. */
  writeLsn: Lsn;
  /** One past the last WAL byte made durable (fsync'ed). */
  flushLsn: Lsn;
  /** One past the last WAL byte applied; a backup never applies WAL, so InvalidXLogRecPtr. */
  applyLsn: Lsn;
  clockUs: bigint;
  replyRequested: boolean;
}

/** 'r' standby status update: Byte1 'r', Int64 write, Int64 flush, Int64 apply, Int64 clock, Byte1 reply. */
export function serializeStandbyStatusUpdate(status: StandbyStatus): Buffer {
  const payload = Buffer.alloc(1 + 8 + 8 + 8 + 8 + 1);
  payload.write('r', 0, 'latin1');
  payload.writeBigUInt64BE(status.writeLsn, 1);
  payload.writeBigUInt64BE(status.flushLsn, 9);
  payload.writeBigUInt64BE(status.applyLsn, 17);
  payload.writeBigInt64BE(status.clockUs, 25);
  payload.writeUInt8(status.replyRequested ? 1 : 0, 33);
  return payload;
}

/** Now as the replication protocol counts time: microseconds since 2000-01-01 UTC. */
export function postgresClockUs(nowMs: number): bigint {
  return BigInt(Math.round(nowMs)) * 1000n - postgresEpochOffsetUs;
}

/** A frontend CopyData message ('d', Int32 length including itself, payload). */
export function frameCopyData(payload: Buffer): Buffer {
  const frame = Buffer.alloc(5 + payload.length);
  frame.write('d', 0, 'latin1');
  frame.writeInt32BE(4 + payload.length, 1);
  payload.copy(frame, 5);
  return frame;
}

/** A frontend CopyDone message ('c', Int32 4): ends our half of the CopyBoth stream. */
export function frameCopyDone(): Buffer {
  const frame = Buffer.alloc(5);
  frame.write('c', 0, 'latin1');
  frame.writeInt32BE(4, 1);
  return frame;
}
