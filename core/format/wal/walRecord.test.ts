import { describe, expect, it } from 'vitest';
import { isStrataError } from '../../errors.js';
import { crc32c } from '../crc32c.js';
import { parseLsn } from '../lsn.js';
import { loadRealWal } from './fixtures/realWal.js';
import {
  checkWalPageHeader,
  parseWalPageHeader,
  walPageMagicForMajor,
  walPageMagicMajor,
  XLP_FIRST_IS_CONTRECORD,
  XLP_LONG_HEADER,
  type WalPageExpectation,
} from './walPage.js';
import {
  BKPBLOCK_HAS_DATA,
  BKPBLOCK_HAS_IMAGE,
  BKPBLOCK_SAME_REL,
  BKPBLOCK_WILL_INIT,
  computeWalRecordCrc,
  decodeWalRecord,
  parseWalRecordHeader,
  tryDecodeWalRecord,
  XLR_BLOCK_ID_DATA_LONG,
  XLR_BLOCK_ID_DATA_SHORT,
  XLR_BLOCK_ID_ORIGIN,
  XLR_BLOCK_ID_TOPLEVEL_XID,
} from './walRecord.js';

/** Little-endian byte writer for hand-built records. */
class Bytes {
  private readonly parts: number[] = [];
  u8(value: number): this {
    this.parts.push(value & 0xff);
    return this;
  }
  u16(value: number): this {
    return this.u8(value).u8(value >>> 8);
  }
  u32(value: number): this {
    return this.u16(value & 0xffff).u16(value >>> 16);
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.parts.push(bytes[i]!);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
  build(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** Wraps fragment headers and payloads into an XLogRecord with a correct xl_crc. */
function record(
  body: Uint8Array,
  options: { xid?: number; prevLsn?: bigint; info?: number; rmid?: number } = {},
): Uint8Array {
  const totalLength = 24 + body.length;
  const bytes = new Uint8Array(totalLength);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, totalLength, true);
  view.setUint32(4, options.xid ?? 0, true);
  view.setBigUint64(8, options.prevLsn ?? 0x1000000n, true);
  bytes[16] = options.info ?? 0;
  bytes[17] = options.rmid ?? 10;
  bytes.set(body, 24);
  view.setUint32(20, computeWalRecordCrc(bytes), true);
  return bytes;
}

const lsn = 0x2000028n;

/**
 * Block 0: relation 1663/5/16384, main fork, 6 bytes of data, block 7.
 * Block 2: same relation, fsm fork, a full-page image with a hole (`imageInfo` and, when
 * compressed, a hole length), will-init, block 9.
 * Then a replication origin, a top-level xid and 300 bytes of main data (long form).
 */
function sampleBody(
  imageInfo: number,
  compressedHoleLength: number | undefined,
  imageLength: number,
): Uint8Array {
  const header = new Bytes()
    .u8(0)
    .u8(BKPBLOCK_HAS_DATA)
    .u16(6)
    .u32(1663)
    .u32(5)
    .u32(16384)
    .u32(7)
    .u8(2)
    .u8(1 | BKPBLOCK_HAS_IMAGE | BKPBLOCK_SAME_REL | BKPBLOCK_WILL_INIT)
    .u16(0)
    .u16(imageLength)
    .u16(100)
    .u8(imageInfo);
  if (compressedHoleLength !== undefined) header.u16(compressedHoleLength);
  header
    .u32(9)
    .u8(XLR_BLOCK_ID_ORIGIN)
    .u16(3)
    .u8(XLR_BLOCK_ID_TOPLEVEL_XID)
    .u32(777)
    .u8(XLR_BLOCK_ID_DATA_LONG)
    .u32(300);
  header.raw([1, 2, 3, 4, 5, 6]);
  header.raw(new Uint8Array(imageLength).fill(0xaa));
  header.raw(Uint8Array.from({ length: 300 }, (_, i) => i % 251));
  return header.build();
}

describe('XLogRecord header and CRC', () => {
  it('computes xl_crc over the data after the header, then the header up to xl_crc, as the server did', () => {
    const wal = loadRealWal(15);
    const startLsn = parseLsn(wal.manifest.startLsn);
    const segment = wal.segments.get(startLsn / BigInt(wal.manifest.walSegmentSizeBytes))!;
    const offset = Number(startLsn % BigInt(wal.manifest.walSegmentSizeBytes));
    const header = parseWalRecordHeader(segment.subarray(offset));
    expect(header.totalLength).toBeGreaterThan(24);
    expect(header.totalLength).toBeLessThan(8192 - (offset % 8192));
    const bytes = segment.subarray(offset, offset + header.totalLength);
    expect(computeWalRecordCrc(bytes)).toBe(header.crc);
    expect(crc32c(Buffer.concat([bytes.subarray(24), bytes.subarray(0, 20)]))).toBe(header.crc);
  });

  it('returns a checksum failure for a changed byte, and decodeWalRecord throws it', () => {
    const bytes = record(sampleBody(0x01 | 0x02, undefined, 8000));
    bytes[40]! ^= 0x80;
    expect(tryDecodeWalRecord(bytes, lsn, 15)).toEqual({
      ok: false,
      reason: 'checksum-mismatch',
      message: 'incorrect resource manager data checksum in record at 0/2000028',
    });
    let thrown: unknown;
    try {
      decodeWalRecord(bytes, lsn, 15);
    } catch (error) {
      thrown = error;
    }
    expect(isStrataError(thrown) && thrown.code === 'wal' && thrown.message).toBe(
      'incorrect resource manager data checksum in record at 0/2000028',
    );
  });

  it('refuses a length below the header size and an unknown resource manager', () => {
    const short = record(new Uint8Array(0));
    new DataView(short.buffer).setUint32(0, 20, true);
    expect(tryDecodeWalRecord(short, lsn, 15)).toMatchObject({
      ok: false,
      reason: 'invalid-record-length',
    });
    expect(
      tryDecodeWalRecord(
        record(new Bytes().u8(XLR_BLOCK_ID_DATA_SHORT).u8(0).build(), { rmid: 40 }),
        lsn,
        15,
      ),
    ).toEqual({
      ok: false,
      reason: 'invalid-rmid',
      message: 'invalid resource manager ID 40 at 0/2000028',
    });
    expect(
      tryDecodeWalRecord(
        record(new Bytes().u8(XLR_BLOCK_ID_DATA_SHORT).u8(0).build(), { rmid: 130 }),
        lsn,
        15,
      ).ok,
    ).toBe(true);
    expect(
      tryDecodeWalRecord(
        record(new Bytes().u8(XLR_BLOCK_ID_DATA_SHORT).u8(0).build(), { rmid: 130 }),
        lsn,
        14,
      ).ok,
    ).toBe(false);
  });
});

describe('decodeWalRecord', () => {
  const expectedBlocks = (applyImage: boolean) => [
    {
      blockId: 0,
      forkNumber: 0,
      spcOid: 1663,
      dbOid: 5,
      relNumber: 16384,
      blockNo: 7,
      hasImage: false,
      applyImage: false,
      hasData: true,
      willInit: false,
    },
    {
      blockId: 2,
      forkNumber: 1,
      spcOid: 1663,
      dbOid: 5,
      relNumber: 16384,
      blockNo: 9,
      hasImage: true,
      applyImage,
      hasData: false,
      willInit: true,
    },
  ];

  it('decodes blocks, origin, top-level xid and long main data, with the 15+ bimg_info bits', () => {
    // BKPIMAGE_HAS_HOLE | BKPIMAGE_APPLY (0x02) | BKPIMAGE_COMPRESS_LZ4 (0x08), hole length stored.
    const bytes = record(sampleBody(0x01 | 0x02 | 0x08, 200, 3000), { xid: 901, info: 0x10 });
    const decoded = decodeWalRecord(bytes, lsn, 15);
    expect(decoded).toMatchObject({
      lsn,
      endLsn: lsn + BigInt(Math.ceil(bytes.length / 8) * 8),
      totalLength: bytes.length,
      xid: 901,
      info: 0x10,
      rmid: 10,
    });
    expect(decoded.prevLsn).toBe(0x1000000n);
    expect(decoded.blocks).toEqual(expectedBlocks(true));
    expect([...decoded.mainData]).toEqual(Array.from({ length: 300 }, (_, i) => i % 251));
  });

  it('decodes the same record written by 11–14, where 0x02 means compressed and 0x04 apply', () => {
    const bytes = record(sampleBody(0x01 | 0x02 | 0x04, 200, 3000));
    expect(decodeWalRecord(bytes, lsn, 13).blocks).toEqual(expectedBlocks(true));
    // An uncompressed image with a hole and no apply: 0x02 is not set, so no hole length follows.
    expect(decodeWalRecord(record(sampleBody(0x01, undefined, 8000)), lsn, 14).blocks).toEqual(
      expectedBlocks(false),
    );
  });

  it('reads bimg_info with the bits of the record major', () => {
    // For 15+ this is HAS_HOLE | APPLY, uncompressed, no hole length; read as 13 it would claim
    // compression and take two bytes of the block number as a hole length.
    const bytes = record(sampleBody(0x01 | 0x02, undefined, 8000));
    expect(decodeWalRecord(bytes, lsn, 16).blocks).toEqual(expectedBlocks(true));
    expect(tryDecodeWalRecord(bytes, lsn, 13)).toMatchObject({
      ok: false,
      reason: 'invalid-record',
    });
  });

  it('uses the end LSN the reader gives for a record that continues on other pages', () => {
    const bytes = record(new Bytes().u8(XLR_BLOCK_ID_DATA_SHORT).u8(1).u8(9).build());
    expect(decodeWalRecord(bytes, lsn, 18, 0x2004010n).endLsn).toBe(0x2004010n);
  });

  it('applies the cross-checks of DecodeXLogRecord', () => {
    const check = (body: Bytes) => {
      const result = tryDecodeWalRecord(record(body.build()), lsn, 17);
      return result.ok ? 'ok' : result.message;
    };
    expect(check(new Bytes().u8(0).u8(BKPBLOCK_HAS_DATA).u16(0).u32(1).u32(2).u32(3).u32(4))).toBe(
      'BKPBLOCK_HAS_DATA set, but no data included at 0/2000028',
    );
    expect(check(new Bytes().u8(0).u8(0).u16(2).u32(1).u32(2).u32(3).u32(4).raw([0, 0]))).toBe(
      'BKPBLOCK_HAS_DATA not set, but data length is 2 at 0/2000028',
    );
    expect(check(new Bytes().u8(0).u8(BKPBLOCK_SAME_REL).u16(0).u32(4))).toBe(
      'BKPBLOCK_SAME_REL set but no previous rel at 0/2000028',
    );
    expect(
      check(
        new Bytes()
          .u8(1)
          .u8(0)
          .u16(0)
          .u32(1)
          .u32(2)
          .u32(3)
          .u32(4)
          .u8(1)
          .u8(0)
          .u16(0)
          .u32(1)
          .u32(2)
          .u32(3)
          .u32(4),
      ),
    ).toBe('out-of-order block_id 1 at 0/2000028');
    expect(check(new Bytes().u8(40).u8(0).u16(0))).toBe('invalid block_id 40 at 0/2000028');
    expect(
      check(
        new Bytes()
          .u8(0)
          .u8(BKPBLOCK_HAS_IMAGE)
          .u16(0)
          .u16(8192)
          .u16(0)
          .u8(0x02)
          .u32(1)
          .u32(2)
          .u32(3)
          .u32(4)
          .raw(new Uint8Array(8192)),
      ),
    ).toBe('ok');
    expect(
      check(
        new Bytes()
          .u8(0)
          .u8(BKPBLOCK_HAS_IMAGE)
          .u16(0)
          .u16(8000)
          .u16(0)
          .u8(0x02)
          .u32(1)
          .u32(2)
          .u32(3)
          .u32(4)
          .raw(new Uint8Array(8000)),
      ),
    ).toBe('BKPIMAGE_HAS_HOLE not set, but hole offset 0 length 192 at 0/2000028');
    expect(
      check(
        new Bytes()
          .u8(0)
          .u8(BKPBLOCK_HAS_IMAGE)
          .u16(0)
          .u16(8000)
          .u16(0)
          .u8(0x03)
          .u32(1)
          .u32(2)
          .u32(3)
          .u32(4)
          .raw(new Uint8Array(8000)),
      ),
    ).toBe(
      'BKPIMAGE_HAS_HOLE set, but hole offset 0 length 192 block image length 8000 at 0/2000028',
    );
    expect(check(new Bytes().u8(XLR_BLOCK_ID_DATA_SHORT).u8(5).raw([1, 2, 3]))).toBe(
      'record with invalid length at 0/2000028',
    );
    expect(check(new Bytes().u8(XLR_BLOCK_ID_DATA_SHORT).u8(2).raw([1, 2, 3]))).toBe(
      'record with invalid length at 0/2000028',
    );
  });

  it('refuses a major outside 11–18', () => {
    expect(() => decodeWalRecord(record(new Uint8Array(0)), lsn, 10)).toThrow(
      'PostgreSQL 10 WAL is not supported',
    );
  });
});

describe('WAL page headers', () => {
  it('maps each major 11–18 to its XLOG_PAGE_MAGIC and back', () => {
    const magics = {
      11: 0xd098,
      12: 0xd101,
      13: 0xd106,
      14: 0xd10d,
      15: 0xd110,
      16: 0xd113,
      17: 0xd116,
      18: 0xd118,
    };
    for (const [major, magic] of Object.entries(magics)) {
      expect(walPageMagicForMajor(Number(major))).toBe(magic);
      expect(walPageMagicMajor(magic)).toBe(Number(major));
    }
    expect(walPageMagicMajor(0xd097)).toBeUndefined();
    expect(walPageMagicForMajor(19)).toBeUndefined();
  });

  const shortPage = (fields: {
    magic?: number;
    info?: number;
    tli?: number;
    pageAddr?: bigint;
    remLen?: number;
  }) => {
    const page = new Uint8Array(8192);
    const view = new DataView(page.buffer);
    view.setUint16(0, fields.magic ?? 0xd110, true);
    view.setUint16(2, fields.info ?? 0, true);
    view.setUint32(4, fields.tli ?? 1, true);
    view.setBigUint64(8, fields.pageAddr ?? 0x1002000n, true);
    view.setUint32(16, fields.remLen ?? 0, true);
    return page;
  };
  const expectation: WalPageExpectation = {
    pageLsn: 0x1002000n,
    walSegmentSizeBytes: 1 << 24,
    segmentName: '000000010000000000000001',
    timelineId: 2,
  };
  const problem = (page: Uint8Array, expected = expectation) =>
    checkWalPageHeader(parseWalPageHeader(page), page, expected);

  it('accepts a valid short header, with a continuation and its remaining length', () => {
    const page = shortPage({ info: XLP_FIRST_IS_CONTRECORD, remLen: 500 });
    expect(parseWalPageHeader(page)).toEqual({
      magic: 0xd110,
      info: 1,
      timelineId: 1,
      pageAddr: 0x1002000n,
      remLen: 500,
      headerSizeBytes: 24,
    });
    expect(problem(page)).toBeUndefined();
  });

  it('finds a zeroed page, unknown magic, stray info bits, a wrong page address, a newer timeline and a missing rem_len', () => {
    const where = 'in WAL segment 000000010000000000000001, LSN 0/1002000, offset 8192';
    expect(problem(new Uint8Array(8192))).toEqual({
      reason: 'zeroed-page',
      message: `zeroed page ${where}: end of WAL`,
    });
    expect(problem(shortPage({ magic: 0xd097 }))).toEqual({
      reason: 'invalid-magic',
      message: `invalid magic number D097 ${where}`,
    });
    expect(problem(shortPage({}), { ...expectation, magic: 0xd116 })?.reason).toBe('invalid-magic');
    expect(problem(shortPage({ info: 0x10 }))).toEqual({
      reason: 'invalid-page-header',
      message: `invalid info bits 0010 ${where}`,
    });
    expect(problem(shortPage({ pageAddr: 0x2002000n }))).toEqual({
      reason: 'unexpected-pageaddr',
      message: `unexpected pageaddr 0/2002000 ${where}`,
    });
    expect(problem(shortPage({ tli: 3 }))?.reason).toBe('unexpected-timeline');
    expect(problem(shortPage({ info: XLP_FIRST_IS_CONTRECORD, remLen: 0 }))?.reason).toBe(
      'invalid-page-header',
    );
  });

  it('requires the long header on the first page of a segment, with this segment size', () => {
    const first = shortPage({ pageAddr: 0x1000000n });
    const atSegmentStart = { ...expectation, pageLsn: 0x1000000n };
    expect(problem(first, atSegmentStart)?.message).toContain(
      'the first page of a segment must have a long header',
    );
    const long = shortPage({ pageAddr: 0x1000000n, info: XLP_LONG_HEADER });
    const view = new DataView(long.buffer);
    view.setBigUint64(24, 7000000000000000001n, true);
    view.setUint32(32, 1 << 24, true);
    view.setUint32(36, 8192, true);
    expect(parseWalPageHeader(long).long).toEqual({
      systemIdentifier: 7000000000000000001n,
      segmentSizeBytes: 1 << 24,
      xlogBlockSizeBytes: 8192,
    });
    expect(problem(long, atSegmentStart)).toBeUndefined();
    expect(problem(long, { ...atSegmentStart, walSegmentSizeBytes: 1 << 20 })?.message).toContain(
      'incorrect segment size',
    );
    expect(problem(long, { ...atSegmentStart, systemIdentifier: 1n })?.message).toContain(
      'WAL file is from different database system',
    );
  });
});
