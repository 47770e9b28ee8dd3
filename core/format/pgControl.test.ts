import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { crc32c } from './crc32c.js';
import { parseLsn } from './lsn.js';
import {
  controlFileCrcValid,
  controlFileMajor,
  parseControlFile,
  withMinRecoveryPoint,
} from './pgControl.js';

const fixtures = join(import.meta.dirname, 'fixtures');
const readFixture = (major: number): Buffer => readFileSync(join(fixtures, `pg_control.${major}`));

/*
 * ControlFileData and CheckPoint transcribed field by field from src/include/catalog/pg_control.h
 * of each major, laid out here with the C alignment rules of x86-64. The parser's offset tables
 * were written by hand; this independent layout checks them, and the real files check this layout
 * (the CRC sits exactly where the struct puts `crc`, and floatFormat reads 1234567.0).
 */
type CType =
  'bool' | 'int32' | 'uint32' | 'uint64' | 'int64' | 'double' | { size: number; align: number };
type StructFields = ReadonlyArray<readonly [name: string, type: CType]>;

function sizeAndAlign(type: CType): { size: number; align: number } {
  if (typeof type === 'object') return type;
  if (type === 'bool') return { size: 1, align: 1 };
  if (type === 'int32' || type === 'uint32') return { size: 4, align: 4 };
  return { size: 8, align: 8 };
}

function layoutStruct(fields: StructFields): {
  offsets: Map<string, number>;
  size: number;
  align: number;
} {
  const offsets = new Map<string, number>();
  let offset = 0;
  let structAlign = 1;
  for (const [name, type] of fields) {
    const { size, align } = sizeAndAlign(type);
    offset = Math.ceil(offset / align) * align;
    offsets.set(name, offset);
    offset += size;
    structAlign = Math.max(structAlign, align);
  }
  return { offsets, size: Math.ceil(offset / structAlign) * structAlign, align: structAlign };
}

function checkPointFields(major: number): StructFields {
  const xid: StructFields =
    major === 11
      ? [
          ['nextXidEpoch', 'uint32'],
          ['nextXid', 'uint32'],
        ]
      : [['nextXid', 'uint64']];
  return [
    ['redo', 'uint64'],
    ['ThisTimeLineID', 'uint32'],
    ['PrevTimeLineID', 'uint32'],
    ['fullPageWrites', 'bool'],
    ...(major >= 17 ? ([['wal_level', 'int32']] as StructFields) : []),
    ...xid,
    ['nextOid', 'uint32'],
    ['nextMulti', 'uint32'],
    ['nextMultiOffset', 'uint32'],
    ['oldestXid', 'uint32'],
    ['oldestXidDB', 'uint32'],
    ['oldestMulti', 'uint32'],
    ['oldestMultiDB', 'uint32'],
    ['time', 'int64'],
    ['oldestCommitTsXid', 'uint32'],
    ['newestCommitTsXid', 'uint32'],
    ['oldestActiveXid', 'uint32'],
  ];
}

function controlFileStruct(major: number): {
  offsets: Map<string, number>;
  checkPoint: Map<string, number>;
} {
  const checkPoint = layoutStruct(checkPointFields(major));
  const control = layoutStruct([
    ['system_identifier', 'uint64'],
    ['pg_control_version', 'uint32'],
    ['catalog_version_no', 'uint32'],
    ['state', 'int32'],
    ['time', 'int64'],
    ['checkPoint', 'uint64'],
    ['checkPointCopy', { size: checkPoint.size, align: checkPoint.align }],
    ['unloggedLSN', 'uint64'],
    ['minRecoveryPoint', 'uint64'],
    ['minRecoveryPointTLI', 'uint32'],
    ['backupStartPoint', 'uint64'],
    ['backupEndPoint', 'uint64'],
    ['backupEndRequired', 'bool'],
    ['wal_level', 'int32'],
    ['wal_log_hints', 'bool'],
    ['MaxConnections', 'int32'],
    ['max_worker_processes', 'int32'],
    ...(major >= 12 ? ([['max_wal_senders', 'int32']] as StructFields) : []),
    ['max_prepared_xacts', 'int32'],
    ['max_locks_per_xact', 'int32'],
    ['track_commit_timestamp', 'bool'],
    ['maxAlign', 'uint32'],
    ['floatFormat', 'double'],
    ['blcksz', 'uint32'],
    ['relseg_size', 'uint32'],
    ['xlog_blcksz', 'uint32'],
    ['xlog_seg_size', 'uint32'],
    ['nameDataLen', 'uint32'],
    ['indexMaxKeys', 'uint32'],
    ['toast_max_chunk_size', 'uint32'],
    ['loblksize', 'uint32'],
    ...(major <= 12 ? ([['float4ByVal', 'bool']] as StructFields) : []),
    ['float8ByVal', 'bool'],
    ['data_checksum_version', 'uint32'],
    ...(major >= 18 ? ([['default_char_signedness', 'bool']] as StructFields) : []),
    ['mock_authentication_nonce', { size: 32, align: 1 }],
    ['crc', 'uint32'],
  ]);
  return { offsets: control.offsets, checkPoint: checkPoint.offsets };
}

function at(map: Map<string, number>, name: string): number {
  const offset = map.get(name);
  if (offset === undefined) throw new Error(`no field ${name}`);
  return offset;
}

/**
 * Facts of the fixture clusters known independently of pg_control: the system identifier, WAL
 * segment size and block size from the long header of their first WAL segment, the checkpoint
 * segment present in pg_wal, max_connections from postgresql.conf, catversion.h of each release.
 */
const realFiles = [
  {
    major: 13,
    pgControlVersion: 1300,
    catalogVersionNo: 202007201,
    systemIdentifier: 7712113372981465086n,
    checkPoint: '0/1813E28',
    xlogSegSize: 16 * 1024 * 1024,
    nextXid: 485n,
    nextOid: 13384,
    crcOffset: 288,
  },
  {
    major: 15,
    pgControlVersion: 1300,
    catalogVersionNo: 202209061,
    systemIdentifier: 7712113375773597708n,
    checkPoint: '0/8358D8',
    xlogSegSize: 1024 * 1024,
    nextXid: 724n,
    nextOid: 13489,
    crcOffset: 288,
  },
  {
    major: 17,
    pgControlVersion: 1700,
    catalogVersionNo: 202406281,
    systemIdentifier: 7712113378152038442n,
    checkPoint: '0/17218D8',
    xlogSegSize: 16 * 1024 * 1024,
    nextXid: 738n,
    nextOid: 13497,
    crcOffset: 288,
  },
  {
    major: 18,
    pgControlVersion: 1800,
    catalogVersionNo: 202506291,
    systemIdentifier: 7712113380621750343n,
    checkPoint: '0/174B290',
    xlogSegSize: 16 * 1024 * 1024,
    nextXid: 752n,
    nextOid: 13507,
    crcOffset: 292,
  },
];

describe('parseControlFile on pg_control of freshly initialized clusters', () => {
  it.each(realFiles)('reads PostgreSQL $major', (expected) => {
    const control = parseControlFile(readFixture(expected.major));
    expect(control).toMatchObject({
      systemIdentifier: expected.systemIdentifier,
      pgControlVersion: expected.pgControlVersion,
      catalogVersionNo: expected.catalogVersionNo,
      major: expected.major,
      state: 1,
      checkPoint: parseLsn(expected.checkPoint),
      minRecoveryPoint: 0n,
      minRecoveryPointTli: 0,
      backupStartPoint: 0n,
      backupEndPoint: 0n,
      backupEndRequired: false,
      walLevel: 1,
      maxConnections: 100,
      blcksz: 8192,
      relsegSize: 131072,
      xlogBlcksz: 8192,
      xlogSegSize: expected.xlogSegSize,
      dataChecksumVersion: 1,
      crcOffset: expected.crcOffset,
    });
    // initdb ends with a shutdown checkpoint, whose redo point is the checkpoint record itself.
    expect(control.checkPointCopy).toMatchObject({
      redo: parseLsn(expected.checkPoint),
      thisTimeLineId: 1,
      prevTimeLineId: 1,
      fullPageWrites: true,
      nextXid: expected.nextXid,
      nextOid: expected.nextOid,
      oldestActiveXid: 0,
    });
    expect(control.checkPointCopy.time).toBe(control.time);
    expect(control.crc).toBe(readFixture(expected.major).readUInt32LE(expected.crcOffset));
    expect(controlFileCrcValid(readFixture(expected.major))).toBe(true);
  });

  it.each(realFiles)('agrees with the C struct layout of PostgreSQL $major', ({ major }) => {
    const buf = readFixture(major);
    const { offsets } = controlFileStruct(major);
    const control = parseControlFile(buf);
    expect(control.crcOffset).toBe(at(offsets, 'crc'));
    expect(buf.readDoubleLE(at(offsets, 'floatFormat'))).toBe(1234567.0);
    expect(buf.readUInt32LE(at(offsets, 'maxAlign'))).toBe(8);
    expect(buf.readUInt32LE(at(offsets, 'nameDataLen'))).toBe(64);
    expect(buf.readUInt32LE(at(offsets, 'indexMaxKeys'))).toBe(32);
    expect(buf.readUInt32LE(at(offsets, 'toast_max_chunk_size'))).toBe(1996);
    expect(buf.readUInt32LE(at(offsets, 'loblksize'))).toBe(2048);
    expect(buf.readUInt32LE(at(offsets, 'blcksz'))).toBe(control.blcksz);
    expect(buf.readUInt32LE(at(offsets, 'xlog_seg_size'))).toBe(control.xlogSegSize);
    expect(buf.readUInt32LE(at(offsets, 'data_checksum_version'))).toBe(
      control.dataChecksumVersion,
    );
    expect(buf.readInt32LE(at(offsets, 'MaxConnections'))).toBe(control.maxConnections);
  });

  it('reads the WAL segment size of a cluster made with --wal-segsize=1', () => {
    expect(parseControlFile(readFixture(15)).xlogSegSize).toBe(1048576);
  });
});

describe('parseControlFile on layouts without an installed server', () => {
  /** Writes the fields Strata reads at the struct offsets of `major`, with a valid CRC. */
  function synthesize(major: number, pgControlVersion: number, catalogVersionNo: number): Buffer {
    const { offsets, checkPoint } = controlFileStruct(major);
    const buf = Buffer.alloc(8192);
    const cp = (name: string): number => at(offsets, 'checkPointCopy') + at(checkPoint, name);
    buf.writeBigUInt64LE(0x6b1d2c3e4f506172n, at(offsets, 'system_identifier'));
    buf.writeUInt32LE(pgControlVersion, at(offsets, 'pg_control_version'));
    buf.writeUInt32LE(catalogVersionNo, at(offsets, 'catalog_version_no'));
    buf.writeInt32LE(6, at(offsets, 'state'));
    buf.writeBigInt64LE(1700000000n, at(offsets, 'time'));
    buf.writeBigUInt64LE(0x3000060n, at(offsets, 'checkPoint'));
    buf.writeBigUInt64LE(0x3000028n, cp('redo'));
    buf.writeUInt32LE(3, cp('ThisTimeLineID'));
    buf.writeUInt32LE(2, cp('PrevTimeLineID'));
    buf.writeUInt8(1, cp('fullPageWrites'));
    if (major === 11) {
      buf.writeUInt32LE(2, cp('nextXidEpoch'));
      buf.writeUInt32LE(5000, cp('nextXid'));
    } else {
      buf.writeBigUInt64LE((2n << 32n) | 5000n, cp('nextXid'));
    }
    buf.writeUInt32LE(24576, cp('nextOid'));
    buf.writeBigInt64LE(1699999999n, cp('time'));
    buf.writeUInt32LE(4999, cp('oldestActiveXid'));
    buf.writeBigUInt64LE(0x3001000n, at(offsets, 'minRecoveryPoint'));
    buf.writeUInt32LE(3, at(offsets, 'minRecoveryPointTLI'));
    buf.writeBigUInt64LE(0x2000028n, at(offsets, 'backupStartPoint'));
    buf.writeBigUInt64LE(0x2000100n, at(offsets, 'backupEndPoint'));
    buf.writeUInt8(1, at(offsets, 'backupEndRequired'));
    buf.writeInt32LE(2, at(offsets, 'wal_level'));
    buf.writeInt32LE(250, at(offsets, 'MaxConnections'));
    buf.writeUInt32LE(8192, at(offsets, 'blcksz'));
    buf.writeUInt32LE(131072, at(offsets, 'relseg_size'));
    buf.writeUInt32LE(8192, at(offsets, 'xlog_blcksz'));
    buf.writeUInt32LE(64 * 1024 * 1024, at(offsets, 'xlog_seg_size'));
    buf.writeUInt32LE(1, at(offsets, 'data_checksum_version'));
    const crcOffset = at(offsets, 'crc');
    buf.writeUInt32LE(crc32c(buf.subarray(0, crcOffset)), crcOffset);
    return buf;
  }

  it.each([
    [11, 1100, 201809051, 280],
    [12, 1201, 201909212, 288],
  ])(
    'reads a PostgreSQL %i layout (pg_control version %i)',
    (major, pgControlVersion, catalogVersionNo, crcOffset) => {
      const control = parseControlFile(synthesize(major, pgControlVersion, catalogVersionNo));
      expect(control).toMatchObject({
        systemIdentifier: 0x6b1d2c3e4f506172n,
        pgControlVersion,
        catalogVersionNo,
        major,
        state: 6,
        time: 1700000000n,
        checkPoint: 0x3000060n,
        minRecoveryPoint: 0x3001000n,
        minRecoveryPointTli: 3,
        backupStartPoint: 0x2000028n,
        backupEndPoint: 0x2000100n,
        backupEndRequired: true,
        walLevel: 2,
        maxConnections: 250,
        blcksz: 8192,
        relsegSize: 131072,
        xlogBlcksz: 8192,
        xlogSegSize: 64 * 1024 * 1024,
        dataChecksumVersion: 1,
        crcOffset,
      });
      expect(control.checkPointCopy).toEqual({
        redo: 0x3000028n,
        thisTimeLineId: 3,
        prevTimeLineId: 2,
        fullPageWrites: true,
        nextXid: (2n << 32n) | 5000n,
        nextOid: 24576,
        time: 1699999999n,
        oldestActiveXid: 4999,
      });
    },
  );

  it.each([
    [202107181, 14],
    [202305211, 16],
    [202307071, 16],
  ])('tells PostgreSQL 13 to 16 apart by catalog version %i → %i', (catalogVersionNo, major) => {
    const buf = Buffer.from(readFixture(15));
    buf.writeUInt32LE(catalogVersionNo, 12);
    buf.writeUInt32LE(crc32c(buf.subarray(0, 288)), 288);
    expect(parseControlFile(buf).major).toBe(major);
  });
});

describe('pg_control validation', () => {
  it('rejects a file with one flipped byte inside the CRC-covered data', () => {
    for (const offset of [0, 100, 250]) {
      const buf = Buffer.from(readFixture(17));
      buf[offset]! ^= 0x40;
      expect(controlFileCrcValid(buf), `offset ${offset}`).toBe(false);
      expect(() => parseControlFile(buf)).toThrow(/global\/pg_control has an invalid CRC/);
    }
  });

  it('ignores the zero padding after the CRC', () => {
    const buf = Buffer.from(readFixture(17));
    buf[4000] = 0x55;
    expect(controlFileCrcValid(buf)).toBe(true);
  });

  it('names an unknown pg_control version', () => {
    const buf = Buffer.from(readFixture(17));
    buf.writeUInt32LE(1002, 8);
    let caught: unknown;
    try {
      parseControlFile(buf);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StrataError);
    expect((caught as StrataError).code).toBe('format');
    expect((caught as StrataError).message).toMatch(/Unsupported pg_control version 1002/);
    expect(controlFileCrcValid(buf)).toBe(false);
  });

  it('rejects a file that is not 8192 bytes', () => {
    expect(() => parseControlFile(readFixture(17).subarray(0, 512))).toThrow(
      /has 512 bytes, expected 8192/,
    );
  });

  it('maps pg_control versions to the oldest major using them', () => {
    expect([1100, 1201, 1300, 1700, 1800].map(controlFileMajor)).toEqual([11, 12, 13, 17, 18]);
    expect(() => controlFileMajor(942)).toThrow(StrataError);
  });
});

describe('withMinRecoveryPoint', () => {
  it.each([13, 15, 17, 18])(
    'sets minRecoveryPoint and its TLI with a valid CRC on PostgreSQL %i',
    (major) => {
      const original = readFixture(major);
      const pristine = Buffer.from(original);
      const updated = withMinRecoveryPoint(original, parseLsn('0/1600168'), 1);
      expect(original.equals(pristine)).toBe(true);
      expect(controlFileCrcValid(updated)).toBe(true);
      const before = parseControlFile(original);
      const after = parseControlFile(updated);
      expect(after.minRecoveryPoint).toBe(parseLsn('0/1600168'));
      expect(after.minRecoveryPointTli).toBe(1);
      expect(after.crc).not.toBe(before.crc);
      expect({ ...after, minRecoveryPoint: 0n, minRecoveryPointTli: 0, crc: 0 }).toEqual({
        ...before,
        minRecoveryPoint: 0n,
        minRecoveryPointTli: 0,
        crc: 0,
      });
      const changed = [...updated.keys()].filter((offset) => updated[offset] !== original[offset]);
      expect(changed.length).toBeGreaterThan(0);
      const { offsets } = controlFileStruct(major);
      for (const offset of changed) {
        const inField = (name: string, length: number): boolean =>
          offset >= at(offsets, name) && offset < at(offsets, name) + length;
        expect(
          inField('minRecoveryPoint', 8) || inField('minRecoveryPointTLI', 4) || inField('crc', 4),
          `byte ${offset}`,
        ).toBe(true);
      }
    },
  );

  it("keeps minRecoveryPointTLI when no timeline is given, as pg_probackup's set_min_recovery_point() does", () => {
    const buf = Buffer.from(readFixture(15));
    buf.writeUInt32LE(7, 144);
    buf.writeUInt32LE(crc32c(buf.subarray(0, 288)), 288);
    const after = parseControlFile(withMinRecoveryPoint(buf, parseLsn('0/9000000')));
    expect(after.minRecoveryPoint).toBe(parseLsn('0/9000000'));
    expect(after.minRecoveryPointTli).toBe(7);
  });

  it('refuses a control file with a broken CRC', () => {
    const buf = Buffer.from(readFixture(17));
    buf[40]! ^= 1;
    expect(() => withMinRecoveryPoint(buf, 1n, 1)).toThrow(/invalid CRC/);
  });
});
