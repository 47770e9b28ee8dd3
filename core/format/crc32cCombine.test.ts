import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';
import { crc32cCombine } from './crc32cCombine.js';

describe('crc32cCombine', () => {
  it('gives the CRC of the concatenation for any split', () => {
    const data = randomBytes(70_000);
    for (const split of [0, 1, 3, 8, 255, 4096, 8192, 65_535, 69_999, 70_000]) {
      const a = data.subarray(0, split);
      const b = data.subarray(split);
      expect(crc32cCombine(crc32c(a), crc32c(b), b.length), `split ${split}`).toBe(crc32c(data));
    }
  });

  it('chains over many parts, as ranges of a file arrive', () => {
    const parts = [5, 0, 8200, 1, 123_456, 77].map((length) => randomBytes(length));
    let combined = crc32c(Buffer.alloc(0));
    for (const part of parts) combined = crc32cCombine(combined, crc32c(part), part.length);
    expect(combined).toBe(crc32c(Buffer.concat(parts)));
  });

  it('matches the standard check value through a split (crc32c("123456789") = 0xE3069283)', () => {
    const text = Buffer.from('123456789');
    expect(crc32cCombine(crc32c(text.subarray(0, 4)), crc32c(text.subarray(4)), 5)).toBe(
      0xe3069283,
    );
  });

  it('handles lengths beyond 2^31 bytes (parts of files over 2 GiB)', () => {
    // With crcB = 0 the combination is the shift alone, and shifts compose: 2^32 = 2^31 + 2^31.
    const crcA = crc32c(Buffer.from('strata'));
    const viaHalves = crc32cCombine(crc32cCombine(crcA, 0, 2 ** 31), 0, 2 ** 31);
    expect(crc32cCombine(crcA, 0, 2 ** 32)).toBe(viaHalves);
    expect(crc32cCombine(crcA, 0, 2 ** 32)).not.toBe(crcA);
    expect(crc32cCombine(crcA, 0, 3 * 2 ** 31)).toBe(crc32cCombine(viaHalves, 0, 2 ** 31));
  });
});
