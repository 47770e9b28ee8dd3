import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../lsn.js';
import {
  loadRealWal,
  memorySource,
  readAllRecords,
  realWalMajors,
  segnoOfName,
  type RealWal,
} from './fixtures/realWal.js';
import {
  maxAlign,
  parseWalPageHeader,
  walPageMagicForMajor,
  walPageMagicMajor,
  XLOG_BLCKSZ,
  XLP_FIRST_IS_CONTRECORD,
} from './walPage.js';
import {
  RM_HEAP_ID,
  RM_LOGICALMSG_ID,
  RM_XLOG_ID,
  walRmgrName,
  type DecodedWalRecord,
} from './walRecord.js';
import { WalReader } from './walReader.js';
import { isXlogSwitch, parseRestorePoint, parseXactCompletion } from './walXact.js';

const page = BigInt(XLOG_BLCKSZ);

function readerFor(wal: RealWal, segments = wal.segments): WalReader {
  return new WalReader({
    source: memorySource(segments),
    timelineId: wal.manifest.timelineId,
    walSegmentSizeBytes: wal.manifest.walSegmentSizeBytes,
  });
}

/**
 * xl_logical_message: dbId, transactional, prefix_size (Size), message_size (Size), prefix +
 * message.
 */
function logicalMessage(record: DecodedWalRecord): { prefix: string; message: Buffer } {
  const data = record.mainData;
  const prefixSize = Number(data.readBigUInt64LE(8));
  const messageSize = Number(data.readBigUInt64LE(16));
  return {
    prefix: data.subarray(24, 24 + prefixSize - 1).toString('utf8'),
    message: data.subarray(24 + prefixSize, 24 + prefixSize + messageSize),
  };
}

function withSegment(
  wal: RealWal,
  segno: bigint,
  change: (bytes: Uint8Array) => void,
): Map<bigint, Uint8Array> {
  const segments = new Map(wal.segments);
  const copy = new Uint8Array(wal.segments.get(segno)!);
  change(copy);
  segments.set(segno, copy);
  return segments;
}

describe.each(realWalMajors)('WAL of PostgreSQL %i (fixtures from a real server)', (major) => {
  const wal = loadRealWal(major);
  const { manifest } = wal;
  const segmentSize = BigInt(manifest.walSegmentSizeBytes);
  const startLsn = parseLsn(manifest.startLsn);
  let allRecords: ReturnType<typeof readAllRecords> | undefined;
  const all = () => (allRecords ??= readAllRecords(readerFor(wal), startLsn));
  const messageOf = (role: string) => manifest.messages.find((message) => message.role === role)!;

  it('has the XLOG_PAGE_MAGIC of its major and a long header naming the cluster', () => {
    const first = wal.segments.get(startLsn / segmentSize)!;
    const header = parseWalPageHeader(first);
    expect(header.magic).toBe(walPageMagicForMajor(major));
    expect(walPageMagicMajor(header.magic)).toBe(major);
    expect(header.pageAddr).toBe((startLsn / segmentSize) * segmentSize);
    expect(header.headerSizeBytes).toBe(40);
    expect(header.long).toEqual({
      systemIdentifier: BigInt(manifest.systemIdentifier),
      segmentSizeBytes: manifest.walSegmentSizeBytes,
      xlogBlockSizeBytes: 8192,
    });
  });

  it('reads every record to the end of WAL, each chained to the one before by xl_prev', async () => {
    const { records, end } = await all();
    expect(records.length).toBeGreaterThan(500);
    expect(records[0]!.lsn).toBe(startLsn);
    let pageBoundaryEnds = 0;
    for (let i = 1; i < records.length; i++) {
      const previous = records[i - 1]!;
      expect(records[i]!.prevLsn).toBe(previous.lsn);
      // A record that ends exactly at a page end is followed by the next page's header.
      const boundary = previous.endLsn % page === 0n;
      if (boundary) pageBoundaryEnds++;
      const headerSize = previous.endLsn % segmentSize === 0n ? 40n : 24n;
      expect(records[i]!.lsn).toBe(boundary ? previous.endLsn + headerSize : previous.endLsn);
    }
    expect(pageBoundaryEnds).toBeGreaterThan(0);
    const last = records.at(-1)!;
    expect(end.reason).toBe('invalid-record-length');
    expect(end.lsn).toBe(last.endLsn);
    expect(end.message).toBe(
      `invalid record length at ${formatLsn(last.endLsn)}: expected at least 24, got 0`,
    );
    expect(last.endLsn).toBeLessThanOrEqual(parseLsn(manifest.flushLsn));
  });

  it('ends the segment at XLOG_SWITCH and goes on at the next segment', async () => {
    const { records } = await all();
    const switchIndex = records.findIndex(isXlogSwitch);
    const switchRecord = records[switchIndex]!;
    expect(switchRecord.lsn + 24n).toBe(parseLsn(manifest.switchLsn));
    expect(switchRecord.endLsn % segmentSize).toBe(0n);
    expect(switchRecord.endLsn).toBe((switchRecord.lsn / segmentSize + 1n) * segmentSize);
    expect(records[switchIndex + 1]!.lsn).toBe(switchRecord.endLsn + 40n);
    // The CHECKPOINT run after pg_switch_wal is in the next segment.
    expect(records.slice(switchIndex + 1).some((record) => record.rmid === RM_XLOG_ID)).toBe(true);
  });

  it('finds the restore point by name, ending where pg_create_restore_point said', async () => {
    const { records } = await all();
    const points = records.flatMap((record) => {
      const point = parseRestorePoint(record);
      return point ? [{ record, point }] : [];
    });
    expect(points).toHaveLength(1);
    expect(points[0]!.point.name).toBe(manifest.restorePoint.name);
    expect(points[0]!.record.endLsn).toBe(parseLsn(manifest.restorePoint.endLsn));
    expect(points[0]!.point.timeTz).toBeLessThanOrEqual(BigInt(manifest.commit.timestampTzMicros));
  });

  it('decodes commit, abort and two-phase commit records with their xids and exact commit times', async () => {
    const { records } = await all();
    const completions = records.flatMap((record) => {
      const completion = parseXactCompletion(record, major);
      return completion ? [{ record, completion }] : [];
    });
    const commit = completions.find(({ completion }) => completion.xid === manifest.commit.xid)!;
    expect(commit.completion).toEqual({
      kind: 'commit',
      prepared: false,
      xid: manifest.commit.xid,
      timeTz: BigInt(manifest.commit.timestampTzMicros),
    });
    expect(commit.record.xid).toBe(manifest.commit.xid);
    expect(commit.record.endLsn).toBeLessThanOrEqual(parseLsn(manifest.commit.endLsnAfter));

    const abort = completions.find(({ completion }) => completion.xid === manifest.abort.xid)!;
    expect(abort.completion.kind).toBe('abort');
    expect(abort.completion.prepared).toBe(false);

    const twoPhase = completions.find(({ completion }) => completion.prepared)!;
    expect(twoPhase.completion).toEqual({
      kind: 'commit',
      prepared: true,
      xid: manifest.twoPhase.xid,
      timeTz: BigInt(manifest.twoPhase.timestampTzMicros),
    });
    expect(twoPhase.record.xid).not.toBe(manifest.twoPhase.xid);
  });

  it('decodes block references of the table with its relfilenode, database, tablespace and every heap block', async () => {
    const { records } = await all();
    const tableBlocks = records.flatMap((record) =>
      record.blocks.filter((block) => block.relNumber === manifest.table.relfilenode),
    );
    expect(tableBlocks.length).toBeGreaterThan(700);
    for (const block of tableBlocks) {
      expect(block.spcOid).toBe(manifest.table.spcOid);
      expect(block.dbOid).toBe(manifest.table.dbOid);
    }
    const heapBlockNos = new Set(
      tableBlocks.filter((block) => block.forkNumber === 0).map((block) => block.blockNo),
    );
    expect([...heapBlockNos].sort((a, b) => a - b)).toEqual(
      Array.from({ length: manifest.table.heapBlocks }, (_, i) => i),
    );
    const heapInserts = records.filter(
      (record) =>
        record.rmid === RM_HEAP_ID && record.blocks[0]?.relNumber === manifest.table.relfilenode,
    );
    expect(heapInserts.length).toBeGreaterThan(600);
    expect(
      records.some((record) =>
        record.blocks.some((block) => block.relNumber === manifest.index.relfilenode),
      ),
    ).toBe(true);
  });

  it('decodes full-page images (plain with a hole and pglz-compressed) with the apply bit of this major', async () => {
    const { records } = await all();
    const images = records.flatMap((record) => record.blocks.filter((block) => block.hasImage));
    expect(images.length).toBeGreaterThan(20);
    expect(images.every((block) => block.applyImage)).toBe(true);
    const updatedTablePages = images.filter(
      (block) => block.relNumber === manifest.table.relfilenode,
    );
    expect(updatedTablePages.length).toBeGreaterThan(0);
  });

  it('reassembles a logical message that spans pages, and one that crosses into the next segment', async () => {
    const { records } = await all();
    const messages = records
      .filter((record) => record.rmid === RM_LOGICALMSG_ID)
      .map((record) => ({ record, ...logicalMessage(record) }));
    expect(messages.map((message) => message.prefix)).toEqual(
      manifest.messages.map((message) => message.prefix),
    );
    for (const [i, expected] of manifest.messages.entries()) {
      const { record, message } = messages[i]!;
      expect(record.endLsn).toBe(parseLsn(expected.endLsn));
      expect(message.length).toBe(expected.sizeBytes);
      expect(message.every((byte) => byte === 0x6d)).toBe(true);
    }
    const span = messages[0]!.record;
    expect(span.lsn / page).toBeLessThan((span.endLsn - 1n) / page - 1n);
    const cross = messages.at(-1)!.record;
    expect(cross.lsn / segmentSize + 1n).toBe((cross.endLsn - 1n) / segmentSize);
    // The next segment opens with the rest of the record: xlp_rem_len bytes after its long header.
    const continuationPage = parseWalPageHeader(
      wal.segments.get((cross.endLsn - 1n) / segmentSize)!,
    );
    expect(continuationPage.info & XLP_FIRST_IS_CONTRECORD).toBe(XLP_FIRST_IS_CONTRECORD);
    let rest = continuationPage.remLen;
    let pageStart = 0;
    let headerSize = 40;
    while (rest > XLOG_BLCKSZ - headerSize) {
      rest -= XLOG_BLCKSZ - headerSize;
      pageStart += XLOG_BLCKSZ;
      headerSize = 24;
    }
    expect(cross.endLsn % segmentSize).toBe(BigInt(pageStart + headerSize + maxAlign(rest)));
  });

  it('finds the first record at or after a segment boundary by skipping the continuation there', async () => {
    const cross = parseLsn(messageOf('cross-segment').endLsn);
    const boundary = (cross / segmentSize) * segmentSize;
    const reader = readerFor(wal);
    expect(await reader.findRecordAtOrAfter(boundary)).toEqual({ kind: 'found', lsn: cross });
    const next = await reader.readRecord();
    expect(next.kind === 'record' && next.record.lsn).toBe(cross);
  });

  it('finds the first record at or after a page boundary inside a multi-page record, and a record start as itself', async () => {
    const { records } = await all();
    const filler = records.find(
      (record) => record.endLsn === parseLsn(messageOf('filler').endLsn),
    )!;
    const insideFiller = (filler.lsn / page + 3n) * page;
    expect(await readerFor(wal).findRecordAtOrAfter(insideFiller)).toEqual({
      kind: 'found',
      lsn: filler.endLsn,
    });
    const midRecord = filler.lsn + 8n;
    expect(await readerFor(wal).findRecordAtOrAfter(midRecord)).toEqual({
      kind: 'found',
      lsn: filler.endLsn,
    });
    const recordStart = records[100]!.lsn;
    expect(await readerFor(wal).findRecordAtOrAfter(recordStart)).toEqual({
      kind: 'found',
      lsn: recordStart,
    });
  });

  it('reports a missing segment by name where a record needs it', async () => {
    const cross = parseLsn(messageOf('cross-segment').endLsn);
    const missingSegno = cross / segmentSize;
    const segments = new Map(wal.segments);
    segments.delete(missingSegno);
    const { records, end } = await readAllRecords(readerFor(wal, segments), startLsn);
    const crossRecord = (await all()).records.find((record) => record.endLsn === cross)!;
    expect(end.reason).toBe('missing-segment');
    const missingName = manifest.segments.find(
      (name) => segnoOfName(name, manifest.walSegmentSizeBytes) === missingSegno,
    )!;
    expect(end.message).toBe(`missing segment ${missingName}`);
    expect(end.lsn).toBe(crossRecord.lsn);
    expect(records.at(-1)!.endLsn).toBe(crossRecord.lsn);
  });

  it('reports a corrupted byte as a checksum failure of the record that holds it', async () => {
    const { records } = await all();
    const target = records.find(
      (record) => parseXactCompletion(record, major)?.xid === manifest.commit.xid,
    )!;
    const segno = target.lsn / segmentSize;
    const offset = Number(target.lsn % segmentSize) + 30;
    const segments = withSegment(wal, segno, (bytes) => {
      bytes[offset]! ^= 0x01;
    });
    const result = await readAllRecords(readerFor(wal, segments), startLsn);
    expect(result.end).toEqual({
      kind: 'end',
      reason: 'checksum-mismatch',
      lsn: target.lsn,
      message: `incorrect resource manager data checksum in record at ${formatLsn(target.lsn)}`,
    });
    expect(result.records.at(-1)!.endLsn).toBe(target.lsn);
  });

  it('stops at a zeroed page, a page from elsewhere (pageaddr mismatch) and an unknown magic', async () => {
    const { records } = await all();
    const filler = records.find(
      (record) => record.endLsn === parseLsn(messageOf('filler').endLsn),
    )!;
    const pageLsn = (filler.lsn / page + 2n) * page;
    const segno = pageLsn / segmentSize;
    const offset = Number(pageLsn % segmentSize);
    const segmentName = manifest.segments.find(
      (name) => segnoOfName(name, manifest.walSegmentSizeBytes) === segno,
    )!;
    const where = `in WAL segment ${segmentName}, LSN ${formatLsn(pageLsn)}, offset ${offset}`;

    const zeroed = await readAllRecords(
      readerFor(
        wal,
        withSegment(wal, segno, (bytes) => bytes.fill(0, offset, offset + XLOG_BLCKSZ)),
      ),
      startLsn,
    );
    expect(zeroed.end).toEqual({
      kind: 'end',
      reason: 'zeroed-page',
      lsn: filler.lsn,
      message: `zeroed page ${where}: end of WAL`,
    });

    const moved = await readAllRecords(
      readerFor(
        wal,
        withSegment(wal, segno, (bytes) =>
          bytes.copyWithin(offset, offset + XLOG_BLCKSZ, offset + 2 * XLOG_BLCKSZ),
        ),
      ),
      startLsn,
    );
    expect(moved.end.reason).toBe('unexpected-pageaddr');
    expect(moved.end.message).toBe(`unexpected pageaddr ${formatLsn(pageLsn + page)} ${where}`);

    const badMagic = await readAllRecords(
      readerFor(
        wal,
        withSegment(wal, segno, (bytes) =>
          new DataView(bytes.buffer).setUint16(offset, 0x1234, true),
        ),
      ),
      startLsn,
    );
    expect(badMagic.end).toEqual({
      kind: 'end',
      reason: 'invalid-magic',
      lsn: filler.lsn,
      message: `invalid magic number 1234 ${where}`,
    });
    expect(badMagic.records.at(-1)!.endLsn).toBe(filler.lsn);
  });

  it('refuses to start on a continuation and on an offset inside a page header', async () => {
    const cross = parseLsn(messageOf('cross-segment').endLsn);
    const boundary = (cross / segmentSize) * segmentSize;
    const reader = readerFor(wal);
    const onContinuation = await reader.readRecord(boundary);
    expect(onContinuation).toMatchObject({
      kind: 'end',
      reason: 'contrecord-requested',
      lsn: boundary,
    });
    const insideHeader = await reader.readRecord(startLsn - (startLsn % page) + 8n);
    expect(insideHeader).toMatchObject({ kind: 'end', reason: 'invalid-record-offset' });
  });

  it('reads segments once while reading forward', async () => {
    const source = memorySource(wal.segments);
    const reader = new WalReader({
      source,
      timelineId: 1,
      walSegmentSizeBytes: manifest.walSegmentSizeBytes,
    });
    await readAllRecords(reader, startLsn);
    expect(source.reads).toEqual(
      manifest.segments.map((_, i) => startLsn / segmentSize + BigInt(i)),
    );
    expect(reader.major).toBe(major);
  });

  it('refuses segments of another cluster when the system identifier is given', async () => {
    const reader = new WalReader({
      source: memorySource(wal.segments),
      timelineId: 1,
      walSegmentSizeBytes: manifest.walSegmentSizeBytes,
      systemIdentifier: BigInt(manifest.systemIdentifier) + 1n,
    });
    const result = await reader.readRecord(startLsn);
    expect(result).toMatchObject({ kind: 'end', reason: 'invalid-page-header', lsn: startLsn });
    expect(result.kind === 'end' && result.message).toContain(
      'WAL file is from different database system',
    );
  });

  if (manifest.major >= 16) {
    it('decodes the same records and block references as the server itself (pg_walinspect)', async () => {
      const { records } = await all();
      const inspect = wal.walInspect!;
      const first = parseLsn(inspect.records[0]!.startLsn);
      const last = parseLsn(inspect.records.at(-1)!.startLsn);
      const ours = records.filter((record) => record.lsn >= first && record.lsn <= last);
      expect(
        ours.map((record) => ({
          startLsn: formatLsn(record.lsn),
          endLsn: formatLsn(record.endLsn),
          prevLsn: formatLsn(record.prevLsn),
          xid: record.xid,
          resourceManager: walRmgrName(record.rmid),
          recordLength: record.totalLength,
          mainDataLength: record.mainData.length,
        })),
      ).toEqual(inspect.records);
      expect(
        ours.flatMap((record) =>
          record.blocks.map((block) => ({
            startLsn: formatLsn(record.lsn),
            blockId: block.blockId,
            spcOid: block.spcOid,
            dbOid: block.dbOid,
            relfilenode: block.relNumber,
            forkNumber: block.forkNumber,
            blockNo: block.blockNo,
            hasImage: block.hasImage,
            applyImage: block.applyImage,
          })),
        ),
      ).toEqual(inspect.blocks.map(({ imageInfo: _imageInfo, ...block }) => block));
      const imageKinds = new Set(inspect.blocks.map((block) => block.imageInfo.join(',')));
      expect(imageKinds).toContain('HAS_HOLE,APPLY');
      expect(imageKinds).toContain('HAS_HOLE,APPLY,COMPRESS_PGLZ');
    });
  }
});
