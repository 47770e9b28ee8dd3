import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameKind, MAX_FRAME_BYTES, encodeFrame } from './frames.js';
import { decodeValue, encodeValue, type WireValue } from './values.js';

describe('agent protocol values', () => {
  it('round-trips every kind of value the operations use', () => {
    const value: WireValue = {
      path: '/var/lib/postgresql/data/base/5/16384.1',
      noFollow: false,
      missing: null,
      sizeBytes: 1073741824,
      mtimeMs: 1732543200123.25,
      negative: -42,
      lsn: 0xffffffff_fffffffen,
      blocks: Uint32Array.from([0, 1, 7, 131071, 0xffffffff]),
      records: Buffer.from('page bytes \u00e9', 'utf8'),
      headers: [{ lsn: 0x16b374d8n, block: 3, pos: 8200, checksum: 0xbeef }],
      nested: [[], {}, 'ü'],
    };
    const decoded = decodeValue(encodeValue(value)) as Record<string, WireValue>;
    expect(decoded['path']).toBe(value.path);
    expect(decoded['noFollow']).toBe(false);
    expect(decoded['missing']).toBeNull();
    expect(decoded['sizeBytes']).toBe(1073741824);
    expect(decoded['mtimeMs']).toBe(1732543200123.25);
    expect(decoded['negative']).toBe(-42);
    expect(decoded['lsn']).toBe(0xffffffff_fffffffen);
    expect([...(decoded['blocks'] as Uint32Array)]).toEqual([0, 1, 7, 131071, 0xffffffff]);
    expect(Buffer.from(decoded['records'] as Uint8Array).toString('utf8')).toBe(
      'page bytes \u00e9',
    );
    expect(decoded['headers']).toEqual([
      { lsn: 0x16b374d8n, block: 3, pos: 8200, checksum: 0xbeef },
    ]);
    expect(decoded['nested']).toEqual([[], {}, 'ü']);
  });

  it('drops undefined object fields and keeps a bare undefined', () => {
    expect(decodeValue(encodeValue({ a: undefined, b: 1 }))).toEqual({ b: 1 });
    expect(decodeValue(encodeValue(undefined))).toBeUndefined();
  });

  it('carries bytes without copying them into another encoding', () => {
    const payload = Buffer.alloc(8192, 0xab);
    // tag (1) + length (4) + the bytes themselves.
    expect(encodeValue(payload).length).toBe(8192 + 5);
  });

  it('refuses a truncated payload and trailing bytes', () => {
    const encoded = encodeValue({ path: '/x' });
    expect(() => decodeValue(encoded.subarray(0, encoded.length - 1))).toThrow(/truncated/);
    expect(() => decodeValue(Buffer.concat([encoded, Buffer.from([0])]))).toThrow(/left after/);
  });
});

describe('agent protocol frames', () => {
  it('reassembles frames split at every byte boundary and glued together', () => {
    const frames = [
      encodeFrame(FrameKind.Request, 7, encodeValue({ op: 'stat', args: { path: '/a' } })),
      encodeFrame(FrameKind.Data, 7, Buffer.alloc(100_000, 1)),
      encodeFrame(FrameKind.Result, 0xfffffffe, Buffer.alloc(0)),
    ];
    const stream = Buffer.concat(frames);
    for (const step of [1, 3, 9, 4096, stream.length]) {
      const decoder = new FrameDecoder();
      const seen = [];
      for (let offset = 0; offset < stream.length; offset += step)
        seen.push(...decoder.push(stream.subarray(offset, offset + step)));
      expect(seen.map((frame) => [frame.kind, frame.requestId, frame.payload.length])).toEqual([
        [FrameKind.Request, 7, frames[0]!.length - 9],
        [FrameKind.Data, 7, 100_000],
        [FrameKind.Result, 0xfffffffe, 0],
      ]);
      expect(decoder.pendingBytes).toBe(0);
    }
  });

  it('refuses bytes that are not frames (a login banner on stdout)', () => {
    const decoder = new FrameDecoder();
    expect(() => decoder.push(Buffer.from('Welcome to db1!\n'))).toThrow(/invalid frame length/);
    const tooLong = Buffer.alloc(9);
    tooLong.writeUInt32LE(MAX_FRAME_BYTES + 1, 0);
    expect(() => new FrameDecoder().push(tooLong)).toThrow(/invalid frame length/);
  });
});
