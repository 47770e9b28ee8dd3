import { describe, expect, it } from 'vitest';
import {
  emptyRestoreDraft,
  nextSteps,
  optionsProblem,
  restoreRequest,
  targetProblem,
} from './restoreDraft.js';
import type { RestoreDraft } from './restoreDraft.js';

function draft(patch: Partial<RestoreDraft>): RestoreDraft {
  return { ...emptyRestoreDraft('main'), destination: '/srv/restore', ...patch };
}

const databases = [
  { oid: 5, name: 'postgres', sizeBytes: 7_000_000 },
  { oid: 16384, name: 'sales', sizeBytes: 90_000_000 },
  { oid: 16385, name: 'hr', sizeBytes: 12_000_000 },
];

describe('restoreRequest', () => {
  it('makes the smallest request for "latest": no action, no options', () => {
    expect(restoreRequest(draft({}), '/cat')).toEqual({
      backupPath: '/cat',
      instance: 'main',
      target: { kind: 'latest' },
      destination: '/srv/restore',
    });
  });

  it('carries a time target with its timeline and action', () => {
    const request = restoreRequest(
      draft({
        targetKind: 'time',
        targetValues: { time: ' 2025-01-02 03:04:05+00 ', lsn: '0/1', xid: '', name: '' },
        timeline: '2',
        action: 'pause',
      }),
      '/cat',
    );
    expect(request.target).toEqual({ kind: 'time', time: '2025-01-02 03:04:05+00' });
    expect(request.timeline).toBe('2');
    expect(request.action).toBe('pause');
  });

  it('lists the ticked databases only when some are unticked', () => {
    expect(restoreRequest(draft({ databases }), '/cat').includeDatabases).toBeUndefined();
    expect(
      restoreRequest(draft({ databases, excludedDatabases: ['sales'] }), '/cat').includeDatabases,
    ).toEqual(['postgres', 'hr']);
  });

  it('sends only mappings that move a path, and replica settings that were typed', () => {
    const request = restoreRequest(
      draft({
        tablespaceMapping: [
          { from: '/ts/a', to: '/ts/a' },
          { from: '/ts/b', to: '/new/b' },
        ],
        restoreAsReplica: true,
        primaryConninfo: ' host=primary ',
        threads: 4,
      }),
      '/cat',
    );
    expect(request.tablespaceMapping).toEqual([{ from: '/ts/b', to: '/new/b' }]);
    expect(request.externalMapping).toBeUndefined();
    expect(request.restoreAsReplica).toEqual({ primaryConninfo: 'host=primary' });
    expect(request.threads).toBe(4);
  });
});

describe('step checks', () => {
  it('explains a malformed LSN or xid and accepts good ones', () => {
    expect(
      targetProblem(
        draft({ targetKind: 'lsn', targetValues: { time: '', lsn: '0/ZZ', xid: '', name: '' } }),
      ),
    ).toMatch(/two hex numbers/);
    expect(
      targetProblem(
        draft({
          targetKind: 'lsn',
          targetValues: { time: '', lsn: '0/3000060', xid: '', name: '' },
        }),
      ),
    ).toBeNull();
    expect(
      targetProblem(
        draft({ targetKind: 'xid', targetValues: { time: '', lsn: '', xid: 'x1', name: '' } }),
      ),
    ).toMatch(/whole number/);
    expect(targetProblem(draft({ targetKind: 'immediate' }))).toBeNull();
  });

  it('refuses a relative destination and a partial restore with nothing ticked', () => {
    expect(optionsProblem(draft({ destination: 'restore' }))).toMatch(/absolute path/);
    expect(
      optionsProblem(draft({ databases, excludedDatabases: ['postgres', 'sales', 'hr'] })),
    ).toMatch(/at least one/);
    expect(optionsProblem(draft({ databases, excludedDatabases: ['sales'] }))).toBeNull();
  });
});

describe('nextSteps', () => {
  it('tells to resume a paused recovery and to drop unticked databases', () => {
    const steps = nextSteps(
      draft({
        targetKind: 'xid',
        action: 'pause',
        databases,
        excludedDatabases: ['sales', 'hr'],
      }),
    );
    expect(steps[0]).toContain('pg_ctl -D /srv/restore start');
    expect(steps.join('\n')).toContain('pg_wal_replay_resume()');
    expect(steps.join('\n')).toContain('(sales, hr)');
  });
});
