import { describe, expect, it } from 'vitest';
import { ExcludePaths, mappedTablespacePath, parseTablespaceMapping } from './pathRules.js';

describe('ExcludePaths', () => {
  it('matches relative prefixes against the PGDATA-relative path and absolute ones against the full path', () => {
    const excludes = new ExcludePaths(['postgresql.auto', '/data/src/pg_log', 'base/5/']);
    expect(excludes.excludes('/data/src', 'postgresql.auto.conf')).toBe(true);
    expect(excludes.excludes('/data/src', 'postgresql.conf')).toBe(false);
    // A plain string prefix, as pg_probackup compares: pg_log also takes pg_logical.
    expect(excludes.excludes('/data/src', 'pg_logical/snapshots')).toBe(true);
    expect(excludes.excludes('/data/dst', 'pg_logical/snapshots')).toBe(false);
    expect(excludes.excludes('/data/dst', 'base/5/1259')).toBe(true);
    expect(excludes.excludes('/data/dst', 'base/5')).toBe(false);
    expect(new ExcludePaths([]).isEmpty).toBe(true);
  });
});

describe('parseTablespaceMapping', () => {
  it('splits OLDDIR=NEWDIR, honours \\= and canonicalizes both sides', () => {
    const mapping = parseTablespaceMapping([
      '/tbs/one/=/new//one',
      '/tbs/a\\=b=/new/ab',
      '/tbs/one=/ignored',
    ]);
    expect([...mapping]).toEqual([
      ['/tbs/one', '/new/one'],
      ['/tbs/a=b', '/new/ab'],
    ]);
    expect(mappedTablespacePath(mapping, '/tbs/one/')).toBe('/new/one');
    expect(mappedTablespacePath(mapping, '/tbs/other')).toBe('/tbs/other');
  });

  it('refuses what pg_probackup refuses, in its words', () => {
    expect(() => parseTablespaceMapping(['/only'])).toThrow(
      'Invalid tablespace mapping format "/only", must be "OLDDIR=NEWDIR"',
    );
    expect(() => parseTablespaceMapping(['=/new'])).toThrow('must be "OLDDIR=NEWDIR"');
    expect(() => parseTablespaceMapping(['/a=/b=/c'])).toThrow(
      'Multiple "=" signs in tablespace mapping',
    );
    expect(() => parseTablespaceMapping(['rel=/b'])).toThrow(
      'Old directory is not an absolute path in tablespace mapping: rel',
    );
    expect(() => parseTablespaceMapping(['/a=rel'])).toThrow(
      'New directory is not an absolute path in tablespace mapping: rel',
    );
  });
});
