import { describe, expect, it } from 'vitest';
import { StrataError } from '../../errors.js';
import { canonicalizePath, mappedPath, parsePathMapping, pathsOverlap } from './pathMapping.js';

function failure(arg: string, kind: 'tablespace' | 'external directory' = 'tablespace'): string {
  try {
    parsePathMapping(arg, kind);
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return (error as StrataError).message;
  }
  throw new Error(`"${arg}" was accepted`);
}

describe('parsePathMapping', () => {
  it('splits OLDDIR=NEWDIR and canonicalizes both sides', () => {
    expect(parsePathMapping('/srv/ts1=/data/ts1', 'tablespace')).toEqual({
      oldDir: '/srv/ts1',
      newDir: '/data/ts1',
    });
    expect(parsePathMapping('/srv//a/./b/=/data/x/../y/', 'tablespace')).toEqual({
      oldDir: '/srv/a/b',
      newDir: '/data/y',
    });
  });

  it('reads \\= as a literal equals sign, as pg_basebackup does', () => {
    expect(parsePathMapping('/srv/a\\=b=/data/c\\=d', 'external directory')).toEqual({
      oldDir: '/srv/a=b',
      newDir: '/data/c=d',
    });
  });

  it("refuses malformed arguments with pg_probackup's messages", () => {
    expect(failure('/srv/ts1')).toBe(
      'Invalid tablespace mapping format "/srv/ts1", must be "OLDDIR=NEWDIR"',
    );
    expect(failure('=/data')).toBe(
      'Invalid tablespace mapping format "=/data", must be "OLDDIR=NEWDIR"',
    );
    expect(failure('/srv=')).toBe(
      'Invalid tablespace mapping format "/srv=", must be "OLDDIR=NEWDIR"',
    );
    expect(failure('/a=/b=/c')).toBe('Multiple "=" signs in tablespace mapping');
    expect(failure('srv/ts=/data')).toBe(
      'Old directory is not an absolute path in tablespace mapping: srv/ts',
    );
    expect(failure('/srv/ts=data', 'external directory')).toBe(
      'New directory is not an absolute path in external directory mapping: data',
    );
  });
});

describe('path helpers', () => {
  it('canonicalizes like PostgreSQL', () => {
    expect(canonicalizePath('/a/b/')).toBe('/a/b');
    expect(canonicalizePath('/')).toBe('/');
    expect(canonicalizePath('/a//b/../c')).toBe('/a/c');
  });

  it('detects nested and equal paths, not shared prefixes', () => {
    expect(pathsOverlap('/data', '/data/ts')).toBe(true);
    expect(pathsOverlap('/data/ts', '/data')).toBe(true);
    expect(pathsOverlap('/data', '/data')).toBe(true);
    expect(pathsOverlap('/data', '/database')).toBe(false);
    expect(pathsOverlap('/', '/x')).toBe(true);
  });

  it('maps a directory named by a mapping and leaves the others', () => {
    const mappings = [{ oldDir: '/a', newDir: '/b' }];
    expect(mappedPath('/a', mappings)).toBe('/b');
    expect(mappedPath('/a/sub', mappings)).toBe('/a/sub');
  });
});
