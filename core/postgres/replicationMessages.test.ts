import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import {
  frameCopyData,
  frameCopyDone,
  parseReplicationMessage,
  postgresClockUs,
  serializeStandbyStatusUpdate,
} from './replicationMessages.js';

describe('replication protocol messages', () => {
  it('decodes XLogData: start, end, send time and the WAL bytes after the 25-byte header', () => {
    const payload = Buffer.from(
      '77' + '0000000103000000' + '0000000103000010' + '0002c1f3a5b6c7d8' + 'deadbeef0102',
      'hex',
    );
    const message = parseReplicationMessage(payload);
    expect(message).toEqual({
      kind: 'xlogData',
      dataStart: 0x1_03000000n,
      walEnd: 0x1_03000010n,
      sendTimeUs: 0x0002c1f3a5b6c7d8n,
      data: Buffer.from('deadbeef0102', 'hex'),
    });
  });

  it('decodes a keepalive and its reply-requested flag', () => {
    const payload = Buffer.from('6b' + '000000000400a000' + '0000000000000005' + '01', 'hex');
    expect(parseReplicationMessage(payload)).toEqual({
      kind: 'keepalive',
      walEnd: 0x0400a000n,
      sendTimeUs: 5n,
      replyRequested: true,
    });
    payload[17] = 0;
    expect(parseReplicationMessage(payload)).toMatchObject({ replyRequested: false });
  });

  it('rejects unknown and truncated messages with StrataError', () => {
    expect(() => parseReplicationMessage(Buffer.from('7a00', 'hex'))).toThrow(
      'Unrecognized streaming header: "z"',
    );
    expect(() => parseReplicationMessage(Buffer.from('7700', 'hex'))).toThrow(StrataError);
    expect(() => parseReplicationMessage(Buffer.from('6b00', 'hex'))).toThrow(
      'Streaming header too small: 2 bytes',
    );
  });

  it('encodes a standby status update byte for byte', () => {
    const payload = serializeStandbyStatusUpdate({
      writeLsn: 0x1_02000060n,
      flushLsn: 0x1_02000000n,
      applyLsn: 0n,
      clockUs: 0x0102030405060708n,
      replyRequested: true,
    });
    expect(payload.toString('hex')).toBe(
      '72' +
        '0000000102000060' +
        '0000000102000000' +
        '0000000000000000' +
        '0102030405060708' +
        '01',
    );
  });

  it('counts the clock from 2000-01-01 UTC in microseconds', () => {
    expect(postgresClockUs(Date.UTC(2000, 0, 1))).toBe(0n);
    expect(postgresClockUs(Date.UTC(2000, 0, 1, 0, 0, 1))).toBe(1_000_000n);
  });

  it('frames CopyData and CopyDone as the frontend protocol does', () => {
    expect(frameCopyData(Buffer.from('ab', 'hex')).toString('hex')).toBe('6400000005ab');
    expect(frameCopyDone().toString('hex')).toBe('6300000004');
  });
});
