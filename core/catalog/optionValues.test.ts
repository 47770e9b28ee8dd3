import { describe, expect, it } from 'vitest';
import { checkCompressLevel, parseCompressAlgorithm } from './optionValues.js';

describe('parseCompressAlgorithm', () => {
  it.each([
    ['zlib', 'zlib'],
    ['z', 'zlib'],
    ['ZL', 'zlib'],
    ['p', 'pglz'],
    ['n', 'none'],
    ['l', 'lz4'],
    ['LZ4', 'lz4'],
    ['zs', 'zstd'],
    [' zstd', 'zstd'],
  ])('reads %j as %s (prefixes in pg_probackup order, then lz4 and zstd)', (text, algorithm) => {
    expect(parseCompressAlgorithm(text)).toBe(algorithm);
  });

  it('refuses what no algorithm starts with', () => {
    expect(() => parseCompressAlgorithm('lzma')).toThrow('Invalid compress algorithm value "lzma"');
    expect(() => parseCompressAlgorithm('zstd1')).toThrow(
      'Invalid compress algorithm value "zstd1"',
    );
    expect(() => parseCompressAlgorithm(' ')).toThrow('Compress algorithm is empty');
  });
});

describe('checkCompressLevel', () => {
  it("keeps pg_probackup's 0..9 and message for its algorithms", () => {
    for (const algorithm of ['zlib', 'pglz', 'none', 'lz4'] as const) {
      expect(() => checkCompressLevel(algorithm, 0)).not.toThrow();
      expect(() => checkCompressLevel(algorithm, 9)).not.toThrow();
      expect(() => checkCompressLevel(algorithm, 10)).toThrow(
        /^--compress-level value must be in the range from 0 to 9$/,
      );
      expect(() => checkCompressLevel(algorithm, -1)).toThrow(/range from 0 to 9$/);
    }
  });

  it('allows 1..19 for zstd', () => {
    expect(() => checkCompressLevel('zstd', 1)).not.toThrow();
    expect(() => checkCompressLevel('zstd', 19)).not.toThrow();
    expect(() => checkCompressLevel('zstd', 0)).toThrow(
      '--compress-level value must be in the range from 1 to 19 for zstd',
    );
    expect(() => checkCompressLevel('zstd', 20)).toThrow('range from 1 to 19 for zstd');
  });

  it('accepts any level some algorithm takes while the algorithm is not known yet', () => {
    expect(() => checkCompressLevel(undefined, 0)).not.toThrow();
    expect(() => checkCompressLevel(undefined, 15)).not.toThrow();
    expect(() => checkCompressLevel(undefined, 20)).toThrow(
      '--compress-level value must be in the range from 0 to 9 (1 to 19 for zstd)',
    );
    expect(() => checkCompressLevel(undefined, -1)).toThrow(/range from 0 to 9$/);
  });
});
