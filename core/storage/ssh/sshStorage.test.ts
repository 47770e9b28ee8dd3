import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyPageRange, type PageRangeJob } from '../../commands/backup/dataFileCopy.js';
import { checkRelationFile } from '../../commands/checkdb/blockValidation.js';
import { readExistingPages } from '../../commands/restore/existingPages.js';
import { isStrataError } from '../../errors.js';
import { createMemoryLogger } from '../../log.js';
import { loadPageCodec } from '../../format/compression.js';
import { crc32c } from '../../format/crc32c.js';
import { BLCKSZ, pgChecksumPage } from '../../format/page.js';
import { agentBundlePath } from '../../remote/agentBundle.js';
import type { AgentSession } from '../../remote/session.js';
import { startLocalAgent } from '../../testing/agentProcess.js';
import { LocalStorage } from '../local/localStorage.js';
import { storageErrorCode } from '../storage.js';
import { SplitStorage, remoteStorageFor } from './splitStorage.js';
import { SshStorage } from './sshStorage.js';

const local = new LocalStorage();
let dir: string;
let agent: Awaited<ReturnType<typeof startLocalAgent>>;
let remote: SshStorage;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-sshstorage-'));
  agent = await startLocalAgent();
  remote = new SshStorage(agent.session);
});

afterAll(() => {
  agent?.session.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A heap-like page with a valid checksum for absolute block `blockNo`. */
function makePage(blockNo: number, lsn: bigint, fill: number): Buffer {
  const page = Buffer.alloc(BLCKSZ);
  page.writeUInt32LE(Number(lsn >> 32n), 0);
  page.writeUInt32LE(Number(lsn & 0xffffffffn), 4);
  page.writeUInt16LE(28, 12);
  page.writeUInt16LE(8000, 14);
  page.writeUInt16LE(BLCKSZ, 16);
  page.writeUInt16LE(BLCKSZ | 4, 18);
  for (let i = 8000; i < BLCKSZ; i++) page[i] = (fill + i) & 0xff;
  page.writeUInt16LE(pgChecksumPage(page, blockNo), 8);
  return page;
}

/** A relation segment of 300 pages: LSNs rising with the block number, every 50th page all zeros. */
function writeRelation(path: string): Buffer {
  const pages = Array.from({ length: 300 }, (_, blockNo) =>
    blockNo % 50 === 49
      ? Buffer.alloc(BLCKSZ)
      : makePage(blockNo, 0x1000000n + BigInt(blockNo) * 0x100n, blockNo),
  );
  const bytes = Buffer.concat(pages);
  writeFileSync(path, bytes);
  return bytes;
}

function agentRequests(session: AgentSession): Promise<number> {
  return session.request('stats', {}).then((stats) => stats.requests);
}

describe('SshStorage over the agent', () => {
  it('reads and writes files like LocalStorage, small and large', async () => {
    const small = join(dir, 'small');
    await remote.writeFile(small, 'hello', { mode: 0o640 });
    expect((await local.readFile(small)).toString()).toBe('hello');
    expect(await remote.stat(small)).toEqual(await local.stat(small));
    expect(((await remote.stat(small))!.mode & 0o777).toString(8)).toBe('640');

    const large = Buffer.alloc(9 * 1024 * 1024 + 123);
    for (let i = 0; i < large.length; i += 4096) large.writeUInt32LE(i, i);
    const largePath = join(dir, 'large');
    await remote.writeFile(largePath, large, { sync: true });
    expect((await local.readFile(largePath)).equals(large)).toBe(true);
    expect((await remote.readFile(largePath)).equals(large)).toBe(true);
    expect(await remote.fileCrc32c(largePath)).toEqual({
      crc: crc32c(large),
      sizeBytes: large.length,
    });

    await remote.writeFileAtomic(join(dir, 'atomic'), large);
    expect((await local.readFile(join(dir, 'atomic'))).equals(large)).toBe(true);
    expect(await local.stat(join(dir, 'atomic.tmp'))).toBeNull();
  });

  it('keeps errno codes, so callers tell a missing file from a failure', async () => {
    expect(await remote.stat(join(dir, 'missing'))).toBeNull();
    const readError = await remote.readFile(join(dir, 'missing')).catch((error: unknown) => error);
    expect(storageErrorCode(readError)).toBe('ENOENT');
    expect((readError as Error).message).toContain('missing');
    await remote.writeFile(join(dir, 'once'), 'x', { exclusive: true });
    const again = await remote
      .writeFile(join(dir, 'once'), 'y', { exclusive: true })
      .catch((error: unknown) => error);
    expect(storageErrorCode(again)).toBe('EEXIST');
  });

  it('pipelines writes on a handle and reads back with read-ahead', async () => {
    const path = join(dir, 'handle');
    const handle = await remote.openWrite(path, { truncate: true, mode: 0o600 });
    const expected = Buffer.alloc(40 * 65536);
    for (let chunk = 0; chunk < 40; chunk++) {
      const data = Buffer.alloc(65536, chunk);
      expected.set(data, chunk * 65536);
      await handle.write(data);
    }
    await handle.write(Buffer.from('patched'), 10);
    expected.write('patched', 10);
    await handle.sync();
    await handle.truncate(expected.length - 5);
    await handle.close();
    const onDisk = await local.readFile(path);
    expect(onDisk.equals(expected.subarray(0, expected.length - 5))).toBe(true);

    const reader = await remote.openRead(path);
    const chunk = Buffer.alloc(100_000);
    const read: Buffer[] = [];
    for (let position = 0; ;) {
      const bytesRead = await reader.read(chunk, position);
      if (bytesRead === 0) break;
      read.push(Buffer.from(chunk.subarray(0, bytesRead)));
      position += bytesRead;
    }
    const random = Buffer.alloc(7);
    expect(await reader.read(random, 10, 7)).toBe(7);
    await reader.close();
    expect(Buffer.concat(read).equals(onDisk)).toBe(true);
    expect(random.toString()).toBe('patched');
  });

  it('reports a failed pipelined write at the latest on close', async () => {
    const path = join(dir, 'readonly-target');
    const handle = await remote.openWrite(path, { truncate: true });
    await handle.write(Buffer.from('ok'));
    // A position the kernel refuses (beyond the maximum file size) fails on the agent, not here.
    const failure = await handle
      .write(Buffer.from('x'), Number.MAX_SAFE_INTEGER)
      .then(() => handle.close())
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
  });

  it('lists directories with stats, sparing the stat round trips that follow', async () => {
    const listed = join(dir, 'listed');
    await remote.mkdir(join(listed, 'sub', 'deeper'), { recursive: true, mode: 0o750 });
    for (const name of ['b', 'a', 'c']) await local.writeFile(join(listed, name), name.repeat(10));
    await remote.symlink(join(listed, 'a'), join(listed, 'link'));
    const entries = await remote.readDir(listed);
    expect(entries).toEqual(await local.readDir(listed));
    const before = await agentRequests(agent.session);
    const stats = await Promise.all(entries.map((entry) => remote.stat(join(listed, entry.name))));
    // Only the stats request itself reached the agent.
    expect((await agentRequests(agent.session)) - before).toBe(1);
    expect(stats).toEqual(
      await Promise.all(entries.map((entry) => local.stat(join(listed, entry.name)))),
    );
    expect(await remote.readLink(join(listed, 'link'))).toBe(join(listed, 'a'));
    expect(await remote.realPath(join(listed, 'link'))).toBe(
      await local.realPath(join(listed, 'a')),
    );
    expect((await remote.stat(join(listed, 'link'), { noFollow: true }))?.type).toBe('symlink');
    await remote.chmod(join(listed, 'a'), 0o600);
    expect(((await local.stat(join(listed, 'a')))!.mode & 0o777).toString(8)).toBe('600');
    await remote.rename(join(listed, 'b'), join(listed, 'bb'));
    await remote.unlink(join(listed, 'c'));
    await remote.syncFile(join(listed, 'bb'));
    await remote.syncDir(listed);
    expect((await local.readDir(listed)).map((entry) => entry.name)).toEqual([
      'a',
      'bb',
      'link',
      'sub',
    ]);
    await remote.removeTree(listed);
    expect(await local.stat(listed)).toBeNull();
  });

  it('copies page ranges on the agent exactly as a local copy does', async () => {
    const path = join(dir, '16384');
    writeRelation(path);
    const base: PageRangeJob = {
      sourcePath: path,
      displayPath: path,
      segno: 0,
      checksumsEnabled: true,
      skipBlockValidation: false,
      compressAlgorithm: 'none',
      compressLevel: 1,
      firstBlock: 0,
      endBlock: undefined,
      blocks: undefined,
      limitBlocks: 300,
    };
    const jobs: PageRangeJob[] = [
      base,
      { ...base, compressAlgorithm: 'zlib', compressLevel: 6, firstBlock: 64, endBlock: 200 },
      {
        ...base,
        compressAlgorithm: 'zstd',
        compressLevel: 3,
        keepPagesFromLsn: 0x1000000n + 250n * 0x100n,
      },
      {
        ...base,
        compressAlgorithm: 'pglz',
        blocks: Uint32Array.from([3, 4, 5, 99, 180, 299, 400]),
      },
    ];
    for (const job of jobs) {
      const expected = await copyPageRange(local, job);
      const actual = await remote.copyPageRange(job);
      expect(Buffer.from(actual.records).equals(Buffer.from(expected.records))).toBe(true);
      expect(actual.headers).toEqual(expected.headers);
      expect([actual.endBlock, actual.ended]).toEqual([expected.endBlock, expected.ended]);
    }
    const filtered = await remote.copyPageRange(jobs[2]!);
    // Pages 250..299 are at or after the LSN; all-zero pages (every 50th) are always kept, as pg_probackup does.
    const kept = [49, 99, 149, 199, 249, ...Array.from({ length: 50 }, (_, i) => 250 + i)];
    expect(filtered.headers.map((entry) => entry.block)).toEqual(kept);
  });

  it('reports a corrupt page found on the agent as the same error a local copy gives', async () => {
    const path = join(dir, '16386');
    const bytes = writeRelation(path);
    const corrupted = 10 * BLCKSZ + 8100;
    bytes.writeUInt8(bytes.readUInt8(corrupted) ^ 0xff, corrupted);
    writeFileSync(path, bytes);
    const job: PageRangeJob = {
      sourcePath: path,
      displayPath: '/pgdata/base/5/16386',
      segno: 0,
      checksumsEnabled: true,
      skipBlockValidation: false,
      compressAlgorithm: 'none',
      compressLevel: 1,
      firstBlock: 0,
      endBlock: undefined,
      blocks: undefined,
      limitBlocks: 300,
    };
    const localError = await copyPageRange(local, job).catch((error: unknown) => error);
    const remoteError = await remote.copyPageRange(job).catch((error: unknown) => error);
    expect(isStrataError(remoteError)).toBe(true);
    expect((remoteError as Error).message).toBe((localError as Error).message);
    expect((remoteError as Error).message).toContain(
      'Corruption detected in file "/pgdata/base/5/16386", block 10',
    );
  });

  it('routes paths between hosts and finds the remote side of a path', async () => {
    const catalog = join(dir, 'catalog');
    const split = new SplitStorage({ roots: [catalog], inside: local, outside: remote });
    expect(split.kind).toBe('ssh');
    expect(split.storageFor(`${catalog}/backups/x`)).toBe(local);
    expect(split.storageFor(`${catalog}-other/x`)).toBe(remote);
    expect(split.storageFor(catalog)).toBe(local);
    expect(remoteStorageFor(split, '/pgdata/base/1/1259')).toBe(remote);
    expect(remoteStorageFor(split, `${catalog}/wal`)).toBeUndefined();
    expect(remoteStorageFor(local, '/pgdata')).toBeUndefined();
    const crossing = await split
      .rename(`${catalog}/a`, join(dir, 'a'))
      .catch((error: unknown) => error);
    expect(storageErrorCode(crossing)).toBe('EXDEV');
  });

  it('looks at existing pages and checks relation files on the agent, with the local results', async () => {
    const path = join(dir, 'existing-16385');
    const bytes = writeRelation(path);
    bytes.writeUInt8(0xff, 7 * BLCKSZ + 9000 - 8192 + 100);
    writeFileSync(path, bytes);
    const split = new SplitStorage({
      roots: [join(dir, 'catalog')],
      inside: local,
      outside: remote,
    });
    for (const mode of ['checksum', 'lsn'] as const) {
      const request = {
        mode,
        limitLsn: 0x1000000n + 200n * 0x100n,
        checksumsEnabled: true,
        segno: 0,
      };
      const here = await readExistingPages(local, path, 300, request, undefined);
      const there = await readExistingPages(split, path, 300, request, undefined);
      expect(there).toEqual(here);
    }
    const file = { absolutePath: path, segno: 0, sizeBytes: bytes.length };
    const localLog = createMemoryLogger();
    const remoteLog = createMemoryLogger();
    const localCheck = await checkRelationFile(local, file, true, localLog);
    const remoteCheck = await checkRelationFile(split, file, true, remoteLog);
    expect(localCheck.corruptBlocks.map((block) => block.blockNo)).toEqual([7]);
    expect(remoteCheck).toEqual(localCheck);
    expect(remoteLog.records.map(({ level, message }) => ({ level, message }))).toEqual(
      localLog.records.map(({ level, message }) => ({ level, message })),
    );
  });

  it('asks the host of a path about its processes: lock files there name the agent', async () => {
    const split = new SplitStorage({ roots: [dir], inside: local, outside: remote });
    const remoteProcesses = split.processesAt('/pgdata/postmaster.pid');
    expect(remoteProcesses.ownPid).toBe(agent.session.hello.pid);
    expect(remoteProcesses.ownPid).not.toBe(process.pid);
    expect(split.processesAt(`${dir}/backups/x/backup.pid`).ownPid).toBe(process.pid);
    expect(await remoteProcesses.isAlive(agent.session.hello.pid)).toBe(true);
    const exited = spawnSync(process.execPath, ['-e', '']).pid!;
    expect(await remoteProcesses.isAlive(exited)).toBe(false);
    const before = await agentRequests(agent.session);
    await remoteProcesses.isAlive(1);
    expect(await agentRequests(agent.session)).toBe(before + 2);
  });
});

describe('an agent without the lz4 codec', () => {
  it('leaves lz4 compression to this side, with the same records', async () => {
    // Outside the repository the agent cannot resolve the lz4-napi package.
    const isolated = mkdtempSync(join(tmpdir(), 'strata-agent-isolated-'));
    const bundle = join(isolated, 'strata-agent.mjs');
    copyFileSync(agentBundlePath(), bundle);
    const lonely = await startLocalAgent(bundle);
    try {
      expect(lonely.session.hello.codecs).not.toContain('lz4');
      expect(lonely.session.hello.codecs).toEqual(
        expect.arrayContaining(['none', 'zlib', 'pglz', 'zstd']),
      );
      const path = join(dir, '16385');
      writeRelation(path);
      await loadPageCodec('lz4');
      const job: PageRangeJob = {
        sourcePath: path,
        displayPath: path,
        segno: 0,
        checksumsEnabled: true,
        skipBlockValidation: false,
        compressAlgorithm: 'lz4',
        compressLevel: 1,
        firstBlock: 0,
        endBlock: undefined,
        blocks: undefined,
        limitBlocks: 300,
      };
      const expected = await copyPageRange(local, job);
      const actual = await new SshStorage(lonely.session).copyPageRange(job);
      expect(Buffer.from(actual.records).equals(Buffer.from(expected.records))).toBe(true);
      expect(actual.headers).toEqual(expected.headers);
    } finally {
      lonely.session.close();
      rmSync(isolated, { recursive: true, force: true });
    }
  });
});

describe('a killed agent', () => {
  it('fails the pending and later calls with one clear message', async () => {
    const doomed = await startLocalAgent();
    const storage = new SshStorage(doomed.session);
    const path = join(dir, 'big-for-kill');
    writeFileSync(path, Buffer.alloc(64 * 1024 * 1024, 7));
    const pending = storage.readFile(path).catch((error: unknown) => error);
    doomed.kill();
    const error = await pending;
    expect(isStrataError(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /^Lost the connection to the Strata agent on local agent pid \d+: the agent was killed by signal SIGKILL/,
    );
    const later = await storage.stat(path).catch((failure: unknown) => failure);
    expect((later as Error).message).toBe((error as Error).message);
  });
});
