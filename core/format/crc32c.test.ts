import { describe, expect, it } from 'vitest';
import { crc32c, crc32cFinal, crc32cInit, crc32cUpdate } from './crc32c.js';

/** Bit-at-a-time CRC-32C straight from the definition, the reference for the sliced tables. */
function referenceCrc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('crc32c', () => {
  it('gives the CRC-32C check value for "123456789"', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
  });

  it('gives 0 for an empty buffer and leaves a running state unchanged', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32cUpdate(crc32cInit, new Uint8Array(0))).toBe(crc32cInit);
  });

  it('matches the RFC 3720 (iSCSI) test vectors', () => {
    const increasing = Uint8Array.from({ length: 32 }, (_, i) => i);
    const decreasing = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(increasing)).toBe(0x46dd794e);
    expect(crc32c(decreasing)).toBe(0x113fdb5c);
  });

  it('equals the bitwise definition for every length and alignment of the word path', () => {
    const source = pseudoRandomBytes(4096 + 8, 0x5eed);
    for (const length of [1, 15, 16, 63, 64, 65, 79, 80, 81, 127, 128, 1000, 4096]) {
      for (let offset = 0; offset < 4; offset++) {
        const slice = source.subarray(offset, offset + length);
        expect(crc32c(slice), `length ${length} offset ${offset}`).toBe(referenceCrc32c(slice));
      }
    }
  });

  it('gives the same result fed incrementally in uneven chunks as in one call', () => {
    const data = pseudoRandomBytes(100_003, 42);
    const oneShot = crc32c(data);
    for (const chunkBytes of [1, 3, 64, 65, 4093, 8192, 65536]) {
      let state = crc32cInit;
      for (let start = 0; start < data.length; start += chunkBytes) {
        state = crc32cUpdate(state, data.subarray(start, start + chunkBytes));
      }
      expect(crc32cFinal(state), `chunks of ${chunkBytes}`).toBe(oneShot);
    }
    expect(oneShot).toBe(referenceCrc32c(data));
  });

  it('detects a single flipped bit', () => {
    const data = pseudoRandomBytes(8192, 7);
    const before = crc32c(data);
    data[5000]! ^= 0x10;
    expect(crc32c(data)).not.toBe(before);
  });
});
