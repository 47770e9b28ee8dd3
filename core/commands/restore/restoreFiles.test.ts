import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultBackupMeta } from '../../catalog/backupControl.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { encodePageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import type { FileEntry, PageHeaderEntry } from '../../catalog/types.js';
import { crc32c } from '../../format/crc32c.js';
import { BLCKSZ } from '../../format/page.js';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { programVersionNumber } from '../validate/programVersion.js';
import { fileKey } from './incremental.js';
import { restoreChainFiles } from './restoreFiles.js';
import type { ChainMember } from './restoreFiles.js';

const DIR = 0o040000;
const FILE = 0o100000;
const TABLESPACE_DB_DIR = 'pg_tblspc/16390/PG_15_202209061/5';

function entry(path: string, fields: Partial<FileEntry>): FileEntry {
  return {
    path,
    size: 0,
    mode: FILE | 0o600,
    isDatafile: false,
    isCfs: false,
    crc: 0,
    compressAlg: 'none',
    externalDirNum: 0,
    dbOid: 0,
    fullSize: undefined,
    segno: undefined,
    linked: undefined,
    nBlocks: undefined,
    nHeaders: undefined,
    hdrCrc: undefined,
    hdrOff: undefined,
    hdrSize: undefined,
    ...fields,
  };
}

function dirEntry(path: string, mode = 0o700): FileEntry {
  return entry(path, { mode: DIR | mode });
}

function page(tag: number): Buffer {
  return Buffer.alloc(BLCKSZ, tag);
}

/** Writes a backup directory: `database/` files, a page_header_map, and returns the member. */
class BackupBuilder {
  readonly dir: string;
  private readonly entries: FileEntry[] = [];
  private map = Buffer.alloc(0);

  constructor(
    root: string,
    readonly id: string,
  ) {
    this.dir = join(root, id);
    mkdirSync(join(this.dir, 'database'), { recursive: true });
  }

  add(fileEntry: FileEntry, content?: Buffer): this {
    if (content !== undefined) {
      const path = join(this.dir, 'database', fileEntry.path);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
    }
    this.entries.push(fileEntry);
    return this;
  }

  /** A file or directory of external directory `num`, stored under external_directories/. */
  addExternal(num: number, fileEntry: FileEntry, content?: Buffer): this {
    if (content !== undefined) {
      const path = join(this.dir, 'external_directories', `externaldir${num}`, fileEntry.path);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
    }
    this.entries.push({ ...fileEntry, externalDirNum: num });
    return this;
  }

  /** A data file stored zlib-compressed page by page, with its page_header_map slice. */
  addDataFile(path: string, pages: Array<[number, Buffer]>, nBlocks: number): this {
    const parts: Buffer[] = [];
    const headers: PageHeaderEntry[] = [];
    let pos = 0;
    for (const [block, data] of pages) {
      const payload = deflateSync(data);
      const header = Buffer.alloc(8);
      header.writeUInt32LE(block, 0);
      header.writeInt32LE(payload.length, 4);
      headers.push({ lsn: 0n, block, pos, checksum: 0 });
      parts.push(header, payload);
      pos += 8 + payload.length;
    }
    headers.push({ lsn: 0n, block: 0, pos, checksum: 0 });
    const slice = encodePageHeaderSlice(headers);
    const stored = Buffer.concat(parts);
    this.add(
      entry(path, {
        size: stored.length,
        isDatafile: true,
        compressAlg: 'zlib',
        dbOid: 5,
        segno: 0,
        nBlocks,
        nHeaders: pages.length,
        hdrCrc: slice.hdrCrc,
        hdrOff: BigInt(this.map.length),
        hdrSize: slice.bytes.length,
      }),
      stored,
    );
    this.map = Buffer.concat([this.map, slice.bytes]);
    return this;
  }

  build(): { member: ChainMember; entries: FileEntry[] } {
    writeFileSync(join(this.dir, 'page_header_map'), this.map);
    const backup: CatalogBackup = {
      ...defaultBackupMeta(),
      id: this.id,
      status: 'OK',
      programVersion: '2.5.0',
      dir: this.dir,
      problems: [],
    };
    const files = new Map(this.entries.map((e) => [fileKey(e.externalDirNum, e.path), e]));
    return {
      member: { backup, files, programVersionNum: programVersionNumber('2.5.0') },
      entries: this.entries,
    };
  }
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'strata-restore-files-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const controlFile = Buffer.alloc(8192, 0x42);
const directories = [
  dirEntry('base'),
  dirEntry('global'),
  dirEntry('pg_tblspc', 0o750),
  dirEntry('pg_tblspc/16390'),
  dirEntry('pg_tblspc/16390/PG_15_202209061'),
  dirEntry(TABLESPACE_DB_DIR),
];

function chain(name: string): { chain: ChainMember[]; destEntries: FileEntry[] } {
  const full = new BackupBuilder(join(root, name), 'FULL01');
  for (const d of directories) full.add(d);
  full
    .add(entry('PG_VERSION', { size: 3, mode: FILE | 0o640 }), Buffer.from('15\n'))
    .add(entry('global/pg_control', { size: 8192 }), controlFile)
    .add(entry('tablespace_map', { size: 6 }), Buffer.from('16390 /x\n'))
    .addDataFile(
      `${TABLESPACE_DB_DIR}/16400`,
      [
        [0, page(1)],
        [1, page(1)],
        [2, page(1)],
      ],
      3,
    );
  const incremental = new BackupBuilder(join(root, name), 'INCR01');
  for (const d of directories) incremental.add(d);
  incremental
    .add(entry('PG_VERSION', { size: -1, mode: FILE | 0o640 }))
    .add(entry('global/pg_control', { size: 8192 }), Buffer.alloc(8192, 0x43))
    .add(entry('tablespace_map', { size: 6 }), Buffer.from('16390 /x\n'))
    .add(entry('database_map', { size: 4 }), Buffer.from('{}\n\n'))
    .add(entry('base/empty', { size: 0 }))
    .addDataFile(
      `${TABLESPACE_DB_DIR}/16400`,
      [
        [1, page(2)],
        [3, page(2)],
      ],
      4,
    );
  const fullBuilt = full.build();
  const incrementalBuilt = incremental.build();
  return {
    chain: [incrementalBuilt.member, fullBuilt.member],
    destEntries: incrementalBuilt.entries,
  };
}

describe('restoreChainFiles', () => {
  it('restores tablespaces as symlinks to their recorded paths and files from the right member', async () => {
    const { chain: members, destEntries } = chain('chain1');
    const pgdata = join(root, 'pgdata1');
    const tablespacePath = join(root, 'tablespaces', 'ts1');
    mkdirSync(pgdata, { mode: 0o700 });
    const logger = createMemoryLogger();
    const result = await restoreChainFiles({
      storage: new LocalStorage(),
      logger,
      signal: undefined,
      chain: members,
      destEntries,
      pgdata,
      tablespaces: [{ oid: '16390', path: tablespacePath }],
      threads: 3,
      progress: true,
    });
    expect(result.failure).toBeUndefined();

    // pg_tblspc/<oid> is a symlink; the tablespace directory takes pg_tblspc's mode.
    const link = join(pgdata, 'pg_tblspc', '16390');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(tablespacePath);
    expect(statSync(tablespacePath).mode & 0o7777).toBe(0o750);
    expect(statSync(join(pgdata, 'pg_tblspc')).mode & 0o7777).toBe(0o750);

    const dataFile = readFileSync(join(tablespacePath, 'PG_15_202209061', '5', '16400'));
    expect(dataFile.length).toBe(4 * BLCKSZ);
    expect(dataFile.subarray(0, BLCKSZ).equals(page(1))).toBe(true);
    expect(dataFile.subarray(BLCKSZ, 2 * BLCKSZ).equals(page(2))).toBe(true);
    expect(dataFile.subarray(2 * BLCKSZ, 3 * BLCKSZ).equals(page(1))).toBe(true);
    expect(dataFile.subarray(3 * BLCKSZ).equals(page(2))).toBe(true);

    // An unchanged non-data file comes from the FULL, with its recorded mode.
    expect(readFileSync(join(pgdata, 'PG_VERSION'), 'utf8')).toBe('15\n');
    expect(statSync(join(pgdata, 'PG_VERSION')).mode & 0o7777).toBe(0o640);
    expect(readFileSync(join(pgdata, 'base', 'empty')).length).toBe(0);
    expect(
      readFileSync(join(pgdata, 'global', 'pg_control')).equals(Buffer.alloc(8192, 0x43)),
    ).toBe(true);
    expect(existsSync(join(pgdata, 'tablespace_map'))).toBe(false);
    expect(existsSync(join(pgdata, 'database_map'))).toBe(false);

    // 6 directories × 4096 + 4 pages + PG_VERSION (3) + pg_control (8192).
    expect(result.transferredBytes).toBe(6 * 4096 + 4 * BLCKSZ + 3 + 8192);
    const progress = logger.records.filter((r) => r.level === 'INFO').map((r) => r.message);
    expect(progress.at(-1)).toBe('Progress: Restore file "global/pg_control"');
    expect(result.restoredFiles).toContain(join(pgdata, 'global', 'pg_control'));
    expect(result.restoredDirectories).toContain(tablespacePath);
  });

  it('reports a missing parent copy of an unchanged file as the failure and skips pg_control', async () => {
    const { chain: members, destEntries } = chain('chain2');
    members[1]!.files.delete(fileKey(0, 'PG_VERSION'));
    const pgdata = join(root, 'pgdata2');
    const result = await restoreChainFiles({
      storage: new LocalStorage(),
      logger: createMemoryLogger(),
      signal: undefined,
      chain: members,
      destEntries,
      pgdata,
      tablespaces: [{ oid: '16390', path: join(root, 'tablespaces', 'ts2') }],
      threads: 1,
      progress: false,
    });
    expect(result.failure?.message).toBe(
      'Failed to locate non-data file "PG_VERSION" in backup FULL01',
    );
    expect(existsSync(join(pgdata, 'global', 'pg_control'))).toBe(false);
  });

  it('restores external directories by number, empties excluded databases and links pg_wal', async () => {
    const full = new BackupBuilder(join(root, 'chain3'), 'FULL03');
    for (const d of [
      dirEntry('base'),
      dirEntry('base/16384'),
      dirEntry('global'),
      dirEntry('pg_wal', 0o750),
    ]) {
      full.add(d);
    }
    full
      .add(entry('global/pg_control', { size: 8192 }), controlFile)
      .add(entry('base/16384/PG_VERSION', { size: 3, dbOid: 16384 }), Buffer.from('15\n'))
      .add(entry('base/16384/pg_filenode.map', { size: 4, dbOid: 16384 }), Buffer.from('map!'))
      .add(entry('pg_wal/000000010000000000000002', { size: 5 }), Buffer.from('wal!!'))
      .addExternal(1, dirEntry('conf.d', 0o750))
      .addExternal(1, entry('conf.d/a.conf', { size: 2, mode: FILE | 0o640 }), Buffer.from('a\n'))
      .addExternal(2, entry('b.txt', { size: 2 }), Buffer.from('b\n'));
    const built = full.build();
    const pgdata = join(root, 'pgdata3');
    const waldir = join(root, 'waldir3');
    const external = [join(root, 'ext-a'), join(root, 'ext-b')];
    const result = await restoreChainFiles({
      storage: new LocalStorage(),
      logger: createMemoryLogger(),
      signal: undefined,
      chain: [built.member],
      destEntries: built.entries,
      pgdata,
      tablespaces: [],
      threads: 2,
      progress: false,
      externalDirs: external,
      waldir,
      excludedDbOids: new Set([16384]),
    });
    expect(result.failure).toBeUndefined();
    expect(readFileSync(join(external[0]!, 'conf.d', 'a.conf'), 'utf8')).toBe('a\n');
    expect(statSync(join(external[0]!, 'conf.d')).mode & 0o7777).toBe(0o750);
    expect(statSync(join(external[0]!, 'conf.d', 'a.conf')).mode & 0o7777).toBe(0o640);
    expect(readFileSync(join(external[1]!, 'b.txt'), 'utf8')).toBe('b\n');
    expect(result.restoredFiles).toContain(join(external[1]!, 'b.txt'));
    // Files of an excluded database stay, empty, so that WAL replay finds them.
    expect(statSync(join(pgdata, 'base', '16384', 'PG_VERSION')).size).toBe(0);
    expect(statSync(join(pgdata, 'base', '16384', 'pg_filenode.map')).size).toBe(0);
    expect(readlinkSync(join(pgdata, 'pg_wal'))).toBe(waldir);
    expect(statSync(waldir).mode & 0o7777).toBe(0o750);
    expect(readFileSync(join(waldir, '000000010000000000000002'), 'utf8')).toBe('wal!!');

    const skipped = join(root, 'pgdata3-skip');
    const withoutExternal = await restoreChainFiles({
      storage: new LocalStorage(),
      logger: createMemoryLogger(),
      signal: undefined,
      chain: [built.member],
      destEntries: built.entries,
      pgdata: skipped,
      tablespaces: [],
      threads: 1,
      progress: false,
    });
    expect(withoutExternal.failure).toBeUndefined();
    expect(withoutExternal.restoredFiles.every((path) => path.startsWith(skipped))).toBe(true);
    expect(readFileSync(join(skipped, 'base', '16384', 'PG_VERSION'), 'utf8')).toBe('15\n');
  });

  it('incremental: keeps non-data files with the same CRC32C, removes strays, sets pg_control aside', async () => {
    const full = new BackupBuilder(join(root, 'chain4'), 'FULL04');
    for (const d of [dirEntry('base'), dirEntry('global')]) full.add(d);
    const version = Buffer.from('15\n');
    const conf = Buffer.from('port = 5432\n');
    full
      .add(entry('global/pg_control', { size: 8192 }), controlFile)
      .add(entry('PG_VERSION', { size: 3, crc: crc32c(version) }), version)
      .add(entry('postgresql.conf', { size: conf.length, crc: crc32c(conf) }), conf);
    const built = full.build();
    const pgdata = join(root, 'pgdata4');
    mkdirSync(join(pgdata, 'global'), { recursive: true });
    writeFileSync(join(pgdata, 'PG_VERSION'), version);
    writeFileSync(join(pgdata, 'postgresql.conf'), 'port = 6543\n');
    writeFileSync(join(pgdata, 'postmaster.opts'), 'stale');
    writeFileSync(join(pgdata, 'global', 'pg_control'), Buffer.alloc(8192, 0x11));
    const result = await restoreChainFiles({
      storage: new LocalStorage(),
      logger: createMemoryLogger(),
      signal: undefined,
      chain: [built.member],
      destEntries: built.entries,
      pgdata,
      tablespaces: [],
      threads: 1,
      progress: false,
      destination: { kind: 'incremental', mode: 'checksum', shiftLsn: 0n },
    });
    expect(result.failure).toBeUndefined();
    // 2 directories + postgresql.conf (rewritten) + pg_control; PG_VERSION was kept.
    expect(result.transferredBytes).toBe(2 * 4096 + conf.length + 8192);
    expect(readFileSync(join(pgdata, 'postgresql.conf')).equals(conf)).toBe(true);
    expect(existsSync(join(pgdata, 'postmaster.opts'))).toBe(false);
    expect(readFileSync(join(pgdata, 'global', 'pg_control')).equals(controlFile)).toBe(true);
    expect(existsSync(join(pgdata, 'global', 'pg_control.pbk.bak'))).toBe(false);
  });
});
