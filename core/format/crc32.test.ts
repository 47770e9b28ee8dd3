import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, crc32Final, crc32Init, crc32Update } from './crc32.js';

describe('crc32 (traditional, pg_probackup 2.0.22–2.0.24)', () => {
  it('gives the CRC-32 check value for "123456789"', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('gives 0 for an empty buffer', () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it("equals zlib's crc32 on arbitrary data, also when fed in pieces", () => {
    const data = Uint8Array.from({ length: 70_001 }, (_, i) => (i * 2654435761) >>> 24);
    expect(crc32(data)).toBe(zlibCrc32(data));
    let state = crc32Init;
    for (let start = 0; start < data.length; start += 999)
      state = crc32Update(state, data.subarray(start, start + 999));
    expect(crc32Final(state)).toBe(zlibCrc32(data));
  });
});
