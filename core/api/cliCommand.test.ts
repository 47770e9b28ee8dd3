import { describe, expect, it } from 'vitest';
import { parseArgs } from '../cli/options.js';
import { parsePathMapping } from '../commands/restore/pathMapping.js';
import {
  backupCommandLine,
  pathMappingArgument,
  restoreCommandLine,
  restoreTargetOf,
  setBackupCommandLine,
  shellQuote,
  validateCommandLine,
} from './cliCommand.js';
import type { RestoreRequest } from './contract.js';

/** What a POSIX shell makes of a line of plain words and single-quoted strings (all cliCommand emits). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let current: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ') {
      if (current !== undefined) words.push(current);
      current = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      current = (current ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '\\') {
      current = (current ?? '') + line[++i];
    } else {
      current = (current ?? '') + c;
    }
  }
  if (current !== undefined) words.push(current);
  return words;
}

describe('shellQuote', () => {
  it('leaves plain words alone and single-quotes the rest, quotes included', () => {
    expect(shellQuote('/var/lib/pg-15/data')).toBe('/var/lib/pg-15/data');
    expect(shellQuote('2026-11-25 10:00:00+00')).toBe("'2026-11-25 10:00:00+00'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('')).toBe("''");
    expect(shellWords(`x ${shellQuote("it's $HOME")}`)).toEqual(['x', "it's $HOME"]);
  });
});

describe('restoreCommandLine', () => {
  const request: RestoreRequest = {
    backupPath: '/backups/my catalog',
    instance: 'main',
    backupId: 'TP11RT',
    target: { kind: 'time', time: '2026-11-25 10:00:00+00' },
    timeline: 'latest',
    action: 'promote',
    destination: '/restore/pg data',
    incrementalMode: 'checksum',
    tablespaceMapping: [{ from: '/old/ts=1', to: '/new/ts' }],
    externalMapping: [{ from: '/etc/old', to: '/etc/new' }],
    restoreAsReplica: { primaryConninfo: 'host=primary port=5432', slotName: 'standby_1' },
    includeDatabases: ['sales', 'hr'],
    threads: 4,
  };

  it('writes the exact line', () => {
    expect(restoreCommandLine(request)).toBe(
      "strata restore -B '/backups/my catalog' --instance=main -D '/restore/pg data' -i TP11RT " +
        "--recovery-target-time='2026-11-25 10:00:00+00' --recovery-target-timeline=latest --recovery-target-action=promote " +
        "-I checksum -T '/old/ts\\=1=/new/ts' --external-mapping=/etc/old=/etc/new -R " +
        "--primary-conninfo='host=primary port=5432' -S standby_1 --db-include=sales --db-include=hr -j 4",
    );
  });

  it('is read back by the CLI parser as the same request', () => {
    const words = shellWords(restoreCommandLine(request));
    expect(words[0]).toBe('strata');
    const parsed = parseArgs(words.slice(1));
    expect(parsed.command).toBe('restore');
    const value = (name: string) => parsed.values.get(name);
    expect(value('backup-path')).toEqual(['/backups/my catalog']);
    expect(value('instance')).toEqual(['main']);
    expect(value('pgdata')).toEqual(['/restore/pg data']);
    expect(value('backup-id')).toEqual(['TP11RT']);
    expect(value('recovery-target-time')).toEqual(['2026-11-25 10:00:00+00']);
    expect(value('recovery-target-timeline')).toEqual(['latest']);
    expect(value('recovery-target-action')).toEqual(['promote']);
    expect(value('incremental-mode')).toEqual(['checksum']);
    expect(value('restore-as-replica')).toEqual(['true']);
    expect(value('primary-conninfo')).toEqual(['host=primary port=5432']);
    expect(value('slot')).toEqual(['standby_1']);
    expect(value('db-include')).toEqual(['sales', 'hr']);
    expect(value('threads')).toEqual(['4']);
    const mapping = parsePathMapping(value('tablespace-mapping')![0]!, 'tablespace');
    expect([mapping.oldDir, mapping.newDir]).toEqual(['/old/ts=1', '/new/ts']);
  });

  it('writes each kind of target as pg_probackup spells it', () => {
    const base = { backupPath: '/c', instance: 'i', destination: '/d' };
    const line = (target: RestoreRequest['target']) => restoreCommandLine({ ...base, target });
    expect(line({ kind: 'latest' })).toBe(
      'strata restore -B /c --instance=i -D /d --recovery-target=latest',
    );
    expect(line({ kind: 'immediate' })).toBe(
      'strata restore -B /c --instance=i -D /d --recovery-target=immediate',
    );
    expect(line({ kind: 'lsn', lsn: '0/3000028' })).toBe(
      'strata restore -B /c --instance=i -D /d --recovery-target-lsn=0/3000028',
    );
    expect(line({ kind: 'xid', xid: '731' })).toBe(
      'strata restore -B /c --instance=i -D /d --recovery-target-xid=731',
    );
    expect(line({ kind: 'name', name: 'before upgrade' })).toBe(
      "strata restore -B /c --instance=i -D /d --recovery-target-name='before upgrade'",
    );
  });

  it('gives restore the same target and mappings as the line', () => {
    expect(restoreTargetOf({ target: { kind: 'latest' } })).toEqual({ latest: true });
    expect(
      restoreTargetOf({ target: { kind: 'xid', xid: '9' }, timeline: '2', action: 'pause' }),
    ).toEqual({
      xid: '9',
      timeline: '2',
      action: 'pause',
    });
    expect(pathMappingArgument({ from: '/a=b', to: '/c' })).toBe('/a\\=b=/c');
  });
});

describe('other command lines', () => {
  it('backup, validate and set-backup', () => {
    expect(
      backupCommandLine({
        backupPath: '/c',
        instance: 'main',
        mode: 'DELTA',
        stream: true,
        compressAlg: 'zstd',
        compressLevel: 3,
        threads: 2,
        note: 'before upgrade',
        ttlSeconds: 86400,
        connection: { host: '/tmp', port: 5433, user: 'postgres', database: 'postgres' },
      }),
    ).toBe(
      'strata backup -B /c --instance=main -b DELTA --stream --compress-algorithm=zstd --compress-level=3 -j 2 ' +
        "--note='before upgrade' --ttl=86400 -h /tmp -p 5433 -U postgres -d postgres",
    );
    expect(validateCommandLine('/c', 'main')).toBe('strata validate -B /c --instance=main');
    expect(validateCommandLine('/c', 'main', 'TP11RT')).toBe(
      'strata validate -B /c --instance=main -i TP11RT',
    );
    expect(
      setBackupCommandLine('/c', 'main', 'TP11RT', { expireTime: '2030-01-01 00:00:00' }),
    ).toBe("strata set-backup -B /c --instance=main -i TP11RT --expire-time='2030-01-01 00:00:00'");
  });
});
