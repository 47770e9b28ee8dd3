import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompressAlgorithm, PageHeaderEntry } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import { BLCKSZ } from '../../format/page.js';
import { pglzCompress } from '../../format/pglz.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import type { ReadHandle, Storage, WriteHandle } from '../../storage/storage.js';
import { restoreDataFile } from './dataFile.js';
import type { DataFileSource } from './dataFile.js';

/** A page whose every byte names the backup and block it came from, compressible by both algorithms. */
function page(tag: number, blockNo: number): Buffer {
  const buffer = Buffer.alloc(BLCKSZ, tag);
  buffer.writeUInt32LE(blockNo, 100);
  buffer.writeUInt32LE(tag, 200);
  return buffer;
}

function compress(data: Buffer, algorithm: CompressAlgorithm): Buffer {
  if (algorithm === 'zlib') return deflateSync(data, { level: 1 });
  if (algorithm === 'pglz') return pglzCompress(data)!;
  return data;
}

interface StoredFile {
  bytes: Buffer;
  headers: PageHeaderEntry[];
}

/** A 2.4.0+ backup data file: records without padding, plus its page header entries and terminator. */
function storeModern(pages: Array<[number, Buffer]>, algorithm: CompressAlgorithm): StoredFile {
  const parts: Buffer[] = [];
  const headers: PageHeaderEntry[] = [];
  let pos = 0;
  for (const [blockNo, data] of pages) {
    const payload = compress(data, algorithm);
    const header = Buffer.alloc(8);
    header.writeUInt32LE(blockNo, 0);
    header.writeInt32LE(payload.length, 4);
    headers.push({ lsn: 0n, block: blockNo, pos, checksum: 0 });
    parts.push(header, payload);
    pos += 8 + payload.length;
  }
  headers.push({ lsn: 0n, block: 0, pos: pos, checksum: 0 });
  return { bytes: Buffer.concat(parts), headers };
}

/** A pre-2.4.0 backup data file: compressed payloads padded to 8 bytes, optional truncation marker. */
function storeLegacy(
  pages: Array<[number, Buffer]>,
  algorithm: CompressAlgorithm,
  truncateAtBlock?: number,
): Buffer {
  const parts: Buffer[] = [];
  for (const [blockNo, data] of pages) {
    const payload = compress(data, algorithm);
    const header = Buffer.alloc(8);
    header.writeUInt32LE(blockNo, 0);
    header.writeInt32LE(payload.length, 4);
    const padded = Buffer.alloc(Math.ceil(payload.length / 8) * 8, 0xee);
    payload.copy(padded);
    parts.push(header, padded);
  }
  if (truncateAtBlock !== undefined) {
    const marker = Buffer.alloc(8);
    marker.writeUInt32LE(truncateAtBlock, 0);
    marker.writeInt32LE(-2, 4);
    parts.push(marker);
  }
  return Buffer.concat(parts);
}

let dir: string;
const storage = new LocalStorage();
let fileNo = 0;

function writeStored(bytes: Buffer): string {
  const path = join(dir, `stored-${fileNo++}`);
  writeFileSync(path, bytes);
  return path;
}

function modernSource(
  backupId: string,
  stored: StoredFile,
  algorithm: CompressAlgorithm,
): DataFileSource {
  return {
    backupId,
    path: writeStored(stored.bytes),
    compressAlg: algorithm,
    programVersionNum: 20516,
    loadHeaders: () => Promise.resolve(stored.headers),
  };
}

function blockOf(file: Buffer, blockNo: number): Buffer {
  return file.subarray(blockNo * BLCKSZ, (blockNo + 1) * BLCKSZ);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-datafile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('restoreDataFile', () => {
  it('takes each block from the newest member holding it (zlib FULL, pglz DELTA, raw PAGE)', async () => {
    const full = storeModern(
      [0, 1, 2, 3].map((b) => [b, page(1, b)]),
      'zlib',
    );
    const delta = storeModern(
      [
        [1, page(2, 1)],
        [3, page(2, 3)],
      ],
      'pglz',
    );
    const pageBackup = storeModern(
      [
        [3, page(3, 3)],
        [4, page(3, 4)],
      ],
      'none',
    );
    const destinationPath = join(dir, 'chain');
    const written = await restoreDataFile(storage, {
      destinationPath,
      displayPath: 'base/1/16384',
      mode: 0o640,
      nBlocks: 5,
      sources: [
        modernSource('PAGE1', pageBackup, 'none'),
        modernSource('DELTA1', delta, 'pglz'),
        modernSource('FULL1', full, 'zlib'),
      ],
      newestFirst: true,
      signal: undefined,
    });
    const restored = readFileSync(destinationPath);
    expect(restored.length).toBe(5 * BLCKSZ);
    expect(blockOf(restored, 0).equals(page(1, 0))).toBe(true);
    expect(blockOf(restored, 1).equals(page(2, 1))).toBe(true);
    expect(blockOf(restored, 2).equals(page(1, 2))).toBe(true);
    expect(blockOf(restored, 3).equals(page(3, 3))).toBe(true);
    expect(blockOf(restored, 4).equals(page(3, 4))).toBe(true);
    // Every block written exactly once: the bitmap skipped the older copies of blocks 1 and 3.
    expect(written).toBe(5 * BLCKSZ);
    expect(statSync(destinationPath).mode & 0o7777).toBe(0o640);
  });

  it('writes no block at or past n_blocks and truncates the file to n_blocks', async () => {
    const full = storeModern(
      [0, 1, 2, 3, 4].map((b) => [b, page(7, b)]),
      'zlib',
    );
    const destinationPath = join(dir, 'shrunk');
    const written = await restoreDataFile(storage, {
      destinationPath,
      displayPath: 'base/1/16385',
      mode: 0o600,
      nBlocks: 3,
      sources: [modernSource('FULL2', full, 'zlib')],
      newestFirst: false,
      signal: undefined,
    });
    const restored = readFileSync(destinationPath);
    expect(written).toBe(3 * BLCKSZ);
    expect(restored.length).toBe(3 * BLCKSZ);
    expect(blockOf(restored, 2).equals(page(7, 2))).toBe(true);
  });

  it('scans pre-2.4.0 files in sequence, skipping padding and applying truncation markers oldest first', async () => {
    const full = storeLegacy(
      [0, 1, 2, 3].map((b) => [b, page(4, b)]),
      'zlib',
    );
    // An old PAGE backup: block 1 changed, then the relation was truncated to 2 blocks.
    const incremental = storeLegacy([[1, page(5, 1)]], 'zlib', 2);
    const destinationPath = join(dir, 'legacy');
    const legacy = (backupId: string, bytes: Buffer): DataFileSource => ({
      backupId,
      path: writeStored(bytes),
      compressAlg: 'zlib',
      programVersionNum: 20227,
      loadHeaders: undefined,
    });
    await restoreDataFile(storage, {
      destinationPath,
      displayPath: 'base/1/16386',
      mode: 0o600,
      nBlocks: undefined,
      sources: [legacy('OLDFULL', full), legacy('OLDPAGE', incremental)],
      newestFirst: false,
      signal: undefined,
    });
    const restored = readFileSync(destinationPath);
    expect(restored.length).toBe(2 * BLCKSZ);
    expect(blockOf(restored, 0).equals(page(4, 0))).toBe(true);
    expect(blockOf(restored, 1).equals(page(5, 1))).toBe(true);
  });

  it('fails with a corrupt error naming the backup file when a page does not decompress', async () => {
    const full = storeModern([[0, page(9, 0)]], 'zlib');
    full.bytes[12] = full.bytes[12]! ^ 0xff;
    const source = modernSource('BROKEN', full, 'zlib');
    const failure = restoreDataFile(storage, {
      destinationPath: join(dir, 'broken'),
      displayPath: 'base/1/16387',
      mode: 0o600,
      nBlocks: 1,
      sources: [source],
      newestFirst: false,
      signal: undefined,
    });
    await expect(failure).rejects.toBeInstanceOf(StrataError);
    await expect(failure).rejects.toThrow(
      `block 0 of backup file "${source.path}" (backup BROKEN)`,
    );
  });

  it('writes 64-page runs while reading on, one in flight, and fails the file with the error of a failed write', async () => {
    const full = storeModern(
      Array.from({ length: 200 }, (_, b): [number, Buffer] => [b, page(6, b)]),
      'none',
    );
    /** LocalStorage that logs reads and writes, each write taking 5 ms; write `failAt` fails. */
    const recording = (failAt: number | undefined) => {
      const events: string[] = [];
      let writes = 0;
      const inner = new LocalStorage();
      const wrapped: Storage = new Proxy(inner, {
        get(target, key, receiver) {
          if (key === 'openRead') {
            return async (path: string): Promise<ReadHandle> => {
              const handle = await inner.openRead(path);
              return {
                ...handle,
                read(buffer, position, length) {
                  events.push(`read ${position}`);
                  return handle.read(buffer, position, length);
                },
              };
            };
          }
          if (key !== 'openWrite') return Reflect.get(target, key, receiver);
          return async (...args: Parameters<Storage['openWrite']>): Promise<WriteHandle> => {
            const handle = await inner.openWrite(...args);
            return {
              ...handle,
              async write(data, position) {
                const number = ++writes;
                events.push(`write ${position! / BLCKSZ}+${data.length / BLCKSZ}`);
                await new Promise((resolve) => setTimeout(resolve, 5));
                events.push(`written ${position! / BLCKSZ}`);
                if (number === failAt) {
                  throw Object.assign(new Error('No space left on device'), { code: 'ENOSPC' });
                }
                await handle.write(data, position);
              },
            };
          };
        },
      });
      return { storage: wrapped, events };
    };
    const source = modernSource('FULL3', full, 'none');
    const options = (destinationPath: string) => ({
      destinationPath,
      displayPath: 'base/1/16388',
      mode: 0o600,
      nBlocks: 200,
      sources: [source],
      newestFirst: false,
      signal: undefined,
    });

    const ok = recording(undefined);
    const destinationPath = join(dir, 'runs');
    expect(await restoreDataFile(ok.storage, options(destinationPath))).toBe(200 * BLCKSZ);
    const writes = ok.events.filter((event) => !event.startsWith('read'));
    // One write at a time, in 64-page runs …
    expect(writes).toEqual([
      'write 0+64',
      'written 0',
      'write 64+64',
      'written 64',
      'write 128+64',
      'written 128',
      'write 192+8',
      'written 192',
    ]);
    // … while the next window is read.
    const during = ok.events.slice(ok.events.indexOf('write 0+64'), ok.events.indexOf('written 0'));
    expect(during.some((event) => event.startsWith('read'))).toBe(true);
    const restored = readFileSync(destinationPath);
    for (const blockNo of [0, 63, 64, 199]) {
      expect(blockOf(restored, blockNo).equals(page(6, blockNo))).toBe(true);
    }

    // The second write fails while the third run is collected: no write follows, and the file
    // fails with the error the storage threw.
    const failing = recording(2);
    await expect(
      restoreDataFile(failing.storage, options(join(dir, 'full-disk'))),
    ).rejects.toMatchObject({ code: 'ENOSPC', message: 'No space left on device' });
    expect(failing.events.filter((event) => event.startsWith('write'))).toHaveLength(2);
  });
});
