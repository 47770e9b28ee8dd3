import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { crc32c } from '../format/crc32c.js';
import {
  contentListCrc,
  formatContentLine,
  formatContentList,
  parseContentList,
} from './contentList.js';
import { formatDatabaseMap, parseDatabaseMap } from './databaseMap.js';
import type { FileEntry } from './types.js';

/** The three example lines of spec/catalog-format.md §6.1. */
const specLines = [
  '{"path":"base/16384/16385", "size":"3170", "mode":"33152", "is_datafile":"1", "is_cfs":"0", "crc":"1123581321", "compress_alg":"zlib", "external_dir_num":"0", "dbOid":"16384","full_size":"16384","segno":"0","n_blocks":"2","n_headers":"2","hdr_crc":"2961406512","hdr_off":"0","hdr_size":"31"}',
  '{"path":"global", "size":"0", "mode":"16832", "is_datafile":"0", "is_cfs":"0", "crc":"0", "compress_alg":"none", "external_dir_num":"0", "dbOid":"0"}',
  '{"path":"postgresql.conf", "size":"29687", "mode":"33152", "is_datafile":"0", "is_cfs":"0", "crc":"4010142036", "compress_alg":"none", "external_dir_num":"0", "dbOid":"0"}',
];
const path = '/cat/backups/main/SCUN4E/backup_content.control';

function listError(text: string): StrataError {
  try {
    parseContentList(text, path);
  } catch (error) {
    if (error instanceof StrataError) return error;
    throw error;
  }
  throw new Error('expected an error');
}

describe('backup_content.control', () => {
  it('reads the spec lines into typed entries', () => {
    const entries = parseContentList(specLines.join('\n') + '\n', path);
    expect(entries[0]).toEqual({
      path: 'base/16384/16385',
      size: 3170,
      mode: 33152,
      isDatafile: true,
      isCfs: false,
      crc: 1123581321,
      compressAlg: 'zlib',
      externalDirNum: 0,
      dbOid: 16384,
      fullSize: 16384,
      segno: 0,
      linked: undefined,
      nBlocks: 2,
      nHeaders: 2,
      hdrCrc: 2961406512,
      hdrOff: 0n,
      hdrSize: 31,
    } satisfies FileEntry);
    expect(entries[1]).toMatchObject({
      path: 'global',
      mode: 0o40700,
      isDatafile: false,
      segno: undefined,
      nBlocks: undefined,
    });
  });

  it('writes exactly the spec layout', () => {
    const text = specLines.join('\n') + '\n';
    const bytes = formatContentList(parseContentList(text, path));
    expect(bytes.toString('utf8')).toBe(text);
    expect(contentListCrc(bytes)).toBe(crc32c(Buffer.from(text)));
    expect(formatContentLine(parseContentList(specLines[1]!, path)[0]!)).toBe(specLines[1]);
  });

  it('writes segno for data files, full_size only when it differs, and the header fields together', () => {
    const entry: FileEntry = {
      path: 'base/1/2619.1',
      size: 16400,
      mode: 0o100600,
      isDatafile: true,
      isCfs: false,
      crc: 7,
      compressAlg: 'none',
      externalDirNum: 0,
      dbOid: 1,
      fullSize: 16400,
      segno: undefined,
      linked: undefined,
      nBlocks: 0,
      nHeaders: 2,
      hdrCrc: undefined,
      hdrOff: 123456789012n,
      hdrSize: 40,
    };
    expect(formatContentLine(entry)).toBe(
      '{"path":"base/1/2619.1", "size":"16400", "mode":"33152", "is_datafile":"1", "is_cfs":"0", "crc":"7", ' +
        '"compress_alg":"none", "external_dir_num":"0", "dbOid":"1","segno":"0","n_headers":"2","hdr_crc":"0",' +
        '"hdr_off":"123456789012","hdr_size":"40"}',
    );
    expect(() => formatContentLine({ ...entry, path: 'a"b' })).toThrow('cannot store');
  });

  it('tolerates blanks around the colon and after commas, and optional fields missing', () => {
    const [entry] = parseContentList(
      '{ "path" :  "PG_VERSION",  "size": "3", "mode":"33152", "is_datafile":"0", "crc":"575108234", "compress_alg":"none"}',
      path,
    );
    expect(entry).toMatchObject({
      path: 'PG_VERSION',
      size: 3,
      crc: 575108234,
      isCfs: false,
      externalDirNum: 0,
      dbOid: 0,
    });
  });

  it('reads out-of-range numbers as pg_probackup does', () => {
    const [entry] = parseContentList(
      '{"path":"x", "size":"99999999999999999999", "mode":"33152", "is_datafile":"0", "crc":"0", "compress_alg":"none", "full_size":"99999999999999999999"}',
      path,
    );
    expect(entry!.size).toBe(-1);
    expect(entry!.fullSize).toBeUndefined();
  });

  it.each([
    [
      'a missing mandatory field',
      specLines[0]!.replace('"crc":"1123581321", ', ''),
      `Field "crc" is not found in line 2 of file "${path}"`,
    ],
    [
      'an unquoted value',
      specLines[1]!.replace('"size":"0"', '"size":0'),
      `File "${path}" has invalid format in line 2`,
    ],
    ['a bare word', 'garbage', `File "${path}" has invalid format in line 2`],
    ['a truncated line', specLines[2]!.slice(0, 40), `File "${path}" has invalid format in line 2`],
    ['an empty line', '', `Field "path" is not found in line 2 of file "${path}"`],
    [
      'a bad number',
      specLines[2]!.replace('"size":"29687"', '"size":"29k"'),
      `File "${path}" has invalid format in line 2`,
    ],
    [
      'an unknown compression',
      specLines[1]!.replace('"none"', '"lzma"'),
      `Invalid compress algorithm value "lzma" in line 2 of file "${path}"`,
    ],
  ])('rejects %s with one StrataError naming the file and line', (_what, line, message) => {
    const error = listError(`${specLines[1]}\n${line}\n${specLines[2]}\n`);
    expect(error.code).toBe('format');
    expect(error.message.startsWith(message)).toBe(true);
  });
});

describe('database_map', () => {
  it('reads and writes the one-line-per-database format', () => {
    const text = '{"dbOid":"5", "datname":"postgres"}\n{"dbOid":"16384", "datname":"my db"}\n';
    const entries = parseDatabaseMap(text, '/d');
    expect(entries).toEqual([
      { dbOid: 5, datname: 'postgres' },
      { dbOid: 16384, datname: 'my db' },
    ]);
    expect(formatDatabaseMap(entries)).toBe(text);
    expect(parseDatabaseMap('', '/d')).toEqual([]);
    expect(() => parseDatabaseMap('{"dbOid":"5"}\n', '/d')).toThrow(
      'Field "datname" is not found in line 1 of file "/d"',
    );
  });
});
