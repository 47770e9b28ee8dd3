import { describe, expect, it } from 'vitest';
import type { RemoteHostInfo } from '../../../core/api/contract.js';
import {
  destinationHostProblem,
  emptyRestoreDraft,
  nextSteps,
  optionsProblem,
  remoteConfigNote,
  restoreLocationLabel,
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

describe('restore onto a connected host', () => {
  const host: RemoteHostInfo = {
    id: 'postgres@db1:2222',
    host: 'db1',
    port: 2222,
    user: 'postgres',
    remotePath: null,
    sshOptions: '-i /keys/backup',
    hostKey: { keyType: 'ssh-ed25519', fingerprint: 'SHA256:x' },
    nodeVersion: 'v22.1.0',
    traffic: { bytesSent: 0, bytesReceived: 0 },
    connected: true,
    problem: null,
  };

  it('sends the destination host only when one is chosen', () => {
    expect(restoreRequest(draft({ destinationHost: host.id }), '/cat')).toEqual({
      backupPath: '/cat',
      instance: 'main',
      target: { kind: 'latest' },
      destination: '/srv/restore',
      destinationHost: 'postgres@db1:2222',
    });
    expect(restoreRequest(draft({}), '/cat')).not.toHaveProperty('destinationHost');
    expect(restoreLocationLabel(draft({ destinationHost: host.id }))).toBe('postgres@db1:2222');
    expect(restoreLocationLabel(draft({}))).toBe('this computer');
  });

  it('stops at a destination host that is not connected any more, saying why', () => {
    expect(destinationHostProblem(draft({ destinationHost: host.id }), [host])).toBeNull();
    expect(destinationHostProblem(draft({}), [])).toBeNull();
    expect(
      destinationHostProblem(draft({ destinationHost: host.id }), [
        { ...host, connected: false, problem: 'read ECONNRESET' },
      ]),
    ).toBe(
      'postgres@db1:2222 is not connected (read ECONNRESET): connect it again under Catalogs → Hosts, or restore on this computer.',
    );
    expect(destinationHostProblem(draft({ destinationHost: host.id }), [])).toMatch(
      /^postgres@db1:2222 is not connected: /,
    );
  });

  it('notes that pg_probackup.conf names a host when the restore is made here', () => {
    const remote = { host: 'db1', port: 2222, user: 'postgres' };
    expect(remoteConfigNote(draft({}), remote)).toBe(
      'pg_probackup.conf of main names postgres@db1:2222 (remote-host): this restore is made here, on this computer. Choose that host under "Restore on" to restore there.',
    );
    expect(remoteConfigNote(draft({}), { ...remote, user: null })).toContain('names db1:2222 ');
    expect(remoteConfigNote(draft({ destinationHost: host.id }), remote)).toBeNull();
    expect(remoteConfigNote(draft({}), null)).toBeNull();
  });

  it('says on which host to start the restored server', () => {
    expect(nextSteps(draft({ destinationHost: host.id }))[0]).toMatch(
      /^On postgres@db1:2222, start the server: pg_ctl -D \/srv\/restore start\. If the original server runs on that host,/,
    );
    expect(nextSteps(draft({}))[0]).toMatch(
      /^Start the server: pg_ctl -D \/srv\/restore start\. If the original server runs on this host,/,
    );
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
