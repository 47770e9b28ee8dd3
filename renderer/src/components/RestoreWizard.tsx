import { useState } from 'react';
import { formatBytes, formatLsnText, formatTime } from '../format.js';
import { useActions, useStrata } from '../store/context.js';
import { hostMatchingRemote } from '../store/hosts.js';
import {
  RESTORE_STEPS,
  destinationHostProblem,
  includedDatabases,
  nextSteps,
  optionsProblem,
  remoteConfigNote,
  restoreLocationLabel,
  targetProblem,
} from '../store/restoreDraft.js';
import type { PathMapping, RestoreDraft, RestoreStep, TargetKind } from '../store/restoreDraft.js';
import { estimateTime } from '../timelineLayout.js';
import type { RemoteHostInfo } from '../../../core/api/contract.js';
import { Bytes, CliCommand, JobLogView, JobProgress, StatusBadge, Time } from './common.js';
import { TimelineChart } from './TimelineChart.js';
import { useTimelinePicture } from './TimelineView.js';

const TARGET_KINDS: Array<{ kind: TargetKind; label: string; hint: string }> = [
  {
    kind: 'latest',
    label: 'Latest',
    hint: 'Replay all archived WAL: the newest state the archive holds.',
  },
  {
    kind: 'time',
    label: 'Time',
    hint: 'Stop at the first commit after this time (YYYY-MM-DD HH:MM:SS+TZ).',
  },
  { kind: 'lsn', label: 'LSN', hint: 'Stop at this WAL position.' },
  { kind: 'xid', label: 'Transaction ID', hint: 'Stop after this transaction commits.' },
  {
    kind: 'name',
    label: 'Restore point',
    hint: 'Stop at a point made with pg_create_restore_point(name).',
  },
  {
    kind: 'immediate',
    label: 'Immediate',
    hint: 'Stop as soon as the backup is consistent: the backup itself, no more WAL.',
  },
];

/** Where the wizard cannot go on from a step, in plain words; null when it can. */
function stepProblem(
  step: RestoreStep,
  draft: RestoreDraft,
  plan: ReturnType<typeof usePlan>,
  hosts: RemoteHostInfo[],
): string | null {
  if (step === 1) {
    if (!draft.instance) return 'Choose the instance to restore.';
    if (!draft.destination.startsWith('/'))
      return 'Type the destination: an absolute path of an empty or new directory.';
    return destinationHostProblem(draft, hosts);
  }
  if (step === 2) return targetProblem(draft);
  if (step === 3) {
    if (!plan) return 'Waiting for the plan…';
    if (!plan.backupId) return plan.problem ?? 'No backup can restore this target.';
    if (!plan.walCoversTarget) return plan.problem ?? 'The archived WAL does not reach the target.';
  }
  if (step === 4) return optionsProblem(draft) ?? destinationHostProblem(draft, hosts);
  return null;
}

function usePlan() {
  return useStrata((state) => state.restorePlan);
}

/**
 * Where the destination directory is: this computer or a connected host, with a note when the
 * instance's pg_probackup.conf names a database host but the restore is made here.
 */
function RestoreOn({ draft, testId }: { draft: RestoreDraft; testId: string }) {
  const hosts = useStrata((state) => state.hosts);
  const remote = useStrata(
    (state) =>
      state.catalog?.instances.find((instance) => instance.name === draft.instance)?.remote ?? null,
  );
  const actions = useActions();
  const connected = hosts.filter((host) => host.connected);
  const chosen = draft.destinationHost;
  const note = remoteConfigNote(draft, remote);
  return (
    <>
      <label className="field">
        <span>Restore on</span>
        <select
          data-testid={testId}
          value={chosen ?? ''}
          onChange={(event) =>
            actions.updateRestore({ destinationHost: event.target.value || null })
          }
        >
          <option value="">This computer</option>
          {connected.map((host) => (
            <option key={host.id} value={host.id}>
              {host.id}
            </option>
          ))}
          {chosen !== null && !connected.some((host) => host.id === chosen) && (
            <option value={chosen}>{chosen} (not connected)</option>
          )}
        </select>
        {connected.length === 0 && chosen === null && (
          <span className="muted">connect a host under Catalogs → Hosts to restore onto it</span>
        )}
      </label>
      {note && (
        <p className="note-box" data-testid="restore-remote-note">
          {note}
        </p>
      )}
    </>
  );
}

function StepInstance({ draft }: { draft: RestoreDraft }) {
  const catalog = useStrata((state) => state.catalog);
  const backups = useStrata((state) => state.backups);
  const current = useStrata((state) => state.instance);
  const hosts = useStrata((state) => state.hosts);
  const actions = useActions();
  const restorable = backups.filter((backup) => backup.status === 'OK' || backup.status === 'DONE');
  return (
    <div className="wizard-body">
      <h3>Instance</h3>
      <table className="grid compact">
        <thead>
          <tr>
            <th className="check-col" />
            <th>Instance</th>
            <th>PostgreSQL</th>
            <th className="num">Backups</th>
            <th>PGDATA</th>
          </tr>
        </thead>
        <tbody>
          {catalog?.instances.map((instance) => (
            <tr key={instance.name}>
              <td>
                <input
                  type="radio"
                  name="instance"
                  data-testid={`restore-instance-${instance.name}`}
                  checked={draft.instance === instance.name}
                  onChange={() => {
                    if (instance.name !== current) void actions.selectInstance(instance.name);
                    actions.updateRestore({
                      instance: instance.name,
                      destinationHost: hostMatchingRemote(hosts, instance.remote)?.id ?? null,
                      backupId: null,
                      databases: [],
                      databasesBackupId: null,
                      excludedDatabases: [],
                    });
                  }}
                />
              </td>
              <td className="strong">{instance.name}</td>
              <td>{instance.serverVersion ?? '—'}</td>
              <td className="num">{instance.backupCount}</td>
              <td className="mono">{instance.pgdata ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <label className="field">
        <span>Backup</span>
        <select
          data-testid="restore-backup"
          value={draft.backupId ?? ''}
          onChange={(event) =>
            actions.updateRestore({
              backupId: event.target.value || null,
              databases: [],
              databasesBackupId: null,
              excludedDatabases: [],
            })
          }
        >
          <option value="">Chosen by Strata: the newest valid backup before the target</option>
          {restorable.map((backup) => (
            <option key={backup.id} value={backup.id}>
              {backup.id} — {backup.mode} {backup.status}, consistent at{' '}
              {formatTime(backup.recoveryTime)}, TLI {backup.timelineId}
            </option>
          ))}
        </select>
      </label>
      <RestoreOn draft={draft} testId="restore-on" />
      <label className="field">
        <span>Destination</span>
        <input
          className="mono grow"
          data-testid="restore-destination"
          placeholder="/var/lib/postgresql/17/restored"
          value={draft.destination}
          onChange={(event) => actions.updateRestore({ destination: event.target.value })}
        />
      </label>
      <p className="hint">
        The destination must be new or empty, unless you choose an incremental restore in the
        options.
      </p>
    </div>
  );
}

function StepTarget({ draft }: { draft: RestoreDraft }) {
  const actions = useActions();
  const picture = useTimelinePicture();
  const [picked, setPicked] = useState<{ tli: number; lsn: bigint } | null>(null);
  const values = draft.targetValues;
  const setValue = (kind: keyof RestoreDraft['targetValues'], value: string) =>
    actions.updateRestore({ targetValues: { ...values, [kind]: value }, targetKind: kind });
  return (
    <div className="wizard-body">
      <h3>Recovery target</h3>
      <div className="target-kinds">
        {TARGET_KINDS.map(({ kind, label, hint }) => (
          <label
            key={kind}
            className={draft.targetKind === kind ? 'target-kind active' : 'target-kind'}
          >
            <input
              type="radio"
              name="target-kind"
              data-testid={`target-${kind}`}
              checked={draft.targetKind === kind}
              onChange={() => actions.updateRestore({ targetKind: kind })}
            />
            <span className="strong">{label}</span>
            {kind !== 'latest' && kind !== 'immediate' && (
              <input
                className="mono"
                data-testid={`target-${kind}-value`}
                value={values[kind]}
                placeholder={
                  kind === 'time'
                    ? '2025-11-25 14:30:00+00'
                    : kind === 'lsn'
                      ? '0/3000060'
                      : kind === 'xid'
                        ? '745'
                        : 'before-upgrade'
                }
                onFocus={() => actions.updateRestore({ targetKind: kind })}
                onChange={(event) => setValue(kind, event.target.value)}
              />
            )}
            <span className="muted">{hint}</span>
          </label>
        ))}
      </div>
      {picture && picture.lanes.length > 0 && (
        <>
          <p className="hint">
            Or click the timeline: with <b>Time</b> chosen the click gives an estimated time (or a
            backup&apos;s exact recovery time when you click a backup), otherwise an exact LSN.
          </p>
          <TimelineChart
            picture={picture}
            picked={picked}
            onPick={(pick) => {
              setPicked({ tli: pick.tli, lsn: pick.lsn });
              const time = pick.backup
                ? pick.backup.recoveryTime
                : estimateTime(picture, pick.tli, pick.lsn);
              if (draft.targetKind === 'time' && time !== null) {
                actions.updateRestore({
                  targetValues: { ...values, time: formatTime(time) },
                  timeline: String(pick.tli),
                });
              } else {
                actions.updateRestore({
                  targetKind: 'lsn',
                  targetValues: { ...values, lsn: formatLsnText(pick.lsn) },
                  timeline: String(pick.tli),
                });
              }
            }}
          />
        </>
      )}
      <div className="row">
        <label className="field">
          <span>Timeline</span>
          <input
            className="mono short"
            data-testid="restore-timeline"
            placeholder="backup's"
            value={draft.timeline}
            onChange={(event) => actions.updateRestore({ timeline: event.target.value })}
          />
        </label>
        <label className="field">
          <span>At the target</span>
          <select
            data-testid="restore-action"
            value={draft.action}
            disabled={draft.targetKind === 'latest'}
            onChange={(event) =>
              actions.updateRestore({ action: event.target.value as RestoreDraft['action'] })
            }
          >
            <option value="promote">promote: open for writes</option>
            <option value="pause">pause: inspect first, then pg_wal_replay_resume()</option>
            <option value="shutdown">shutdown: stop the server</option>
          </select>
        </label>
      </div>
    </div>
  );
}

function StepPlan() {
  const plan = usePlan();
  const planning = useStrata((state) => state.planning);
  const actions = useActions();
  if (planning && !plan) return <p className="muted">Planning…</p>;
  if (!plan) {
    return (
      <div className="wizard-body">
        <p className="muted">No plan yet.</p>
        <button type="button" onClick={() => void actions.planRestore()}>
          Plan again
        </button>
      </div>
    );
  }
  return (
    <div className="wizard-body" data-testid="restore-plan">
      <h3>Backup chain</h3>
      {plan.chain.length === 0 ? (
        <p className="bad">No backup can be used.</p>
      ) : (
        <table className="grid compact" data-testid="plan-chain">
          <thead>
            <tr>
              <th>ID</th>
              <th>Mode</th>
              <th>Status</th>
              <th>Recovery time</th>
              <th>Stop LSN</th>
              <th className="num">Data</th>
            </tr>
          </thead>
          <tbody>
            {plan.chain.map((backup) => (
              <tr key={backup.id} data-testid={`plan-backup-${backup.id}`}>
                <td className="mono strong">{backup.id}</td>
                <td>{backup.mode}</td>
                <td>
                  <StatusBadge status={backup.status} />
                </td>
                <td>
                  <Time unix={backup.recoveryTime} />
                </td>
                <td className="mono">{backup.stopLsn}</td>
                <td className="num">
                  <Bytes value={backup.dataBytes} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>WAL</h3>
      {plan.walCoversTarget ? (
        <p className="good" data-testid="plan-wal-ok">
          The archived WAL covers the target: the restore can reach it.
        </p>
      ) : (
        <p className="bad" data-testid="plan-wal-problem">
          {plan.problem ?? 'The archived WAL does not reach the target.'}
        </p>
      )}
    </div>
  );
}

function MappingRows({
  label,
  testId,
  mappings,
  onChange,
}: {
  label: string;
  testId: string;
  mappings: PathMapping[];
  onChange: (next: PathMapping[]) => void;
}) {
  return (
    <div className="mappings" data-testid={testId}>
      <div className="row">
        <span className="strong">{label}</span>
        <button
          type="button"
          className="link"
          onClick={() => onChange([...mappings, { from: '', to: '' }])}
        >
          + add
        </button>
      </div>
      {mappings.length === 0 && <span className="muted">none</span>}
      {mappings.map((mapping, i) => (
        <div className="row" key={i}>
          <input
            className="mono grow"
            value={mapping.from}
            placeholder="old path"
            onChange={(event) =>
              onChange(mappings.map((m, j) => (j === i ? { ...m, from: event.target.value } : m)))
            }
          />
          <span>→</span>
          <input
            className="mono grow"
            value={mapping.to}
            placeholder="new path"
            onChange={(event) =>
              onChange(mappings.map((m, j) => (j === i ? { ...m, to: event.target.value } : m)))
            }
          />
          <button
            type="button"
            className="link"
            onClick={() => onChange(mappings.filter((_, j) => j !== i))}
          >
            remove
          </button>
        </div>
      ))}
    </div>
  );
}

function StepOptions({ draft }: { draft: RestoreDraft }) {
  const actions = useActions();
  const included = includedDatabases(draft);
  const totalBytes = draft.databases.reduce((sum, db) => sum + db.sizeBytes, 0);
  const chosenBytes = draft.databases
    .filter((db) => !draft.excludedDatabases.includes(db.name))
    .reduce((sum, db) => sum + db.sizeBytes, 0);
  return (
    <div className="wizard-body options">
      <div className="columns">
        <div>
          <RestoreOn draft={draft} testId="options-restore-on" />
          <label className="field">
            <span>Destination</span>
            <input
              className="mono grow"
              data-testid="options-destination"
              value={draft.destination}
              onChange={(event) => actions.updateRestore({ destination: event.target.value })}
            />
          </label>
          <label className="field">
            <span>Incremental</span>
            <select
              data-testid="restore-incremental"
              value={draft.incrementalMode}
              onChange={(event) =>
                actions.updateRestore({
                  incrementalMode: event.target.value as RestoreDraft['incrementalMode'],
                })
              }
            >
              <option value="none">none: the destination must be empty</option>
              <option value="checksum">checksum: reuse pages whose checksum matches</option>
              <option value="lsn">lsn: reuse pages older than the divergence point</option>
            </select>
          </label>
          <label className="field">
            <span>Threads</span>
            <input
              type="number"
              className="short"
              min={1}
              max={128}
              value={draft.threads}
              onChange={(event) =>
                actions.updateRestore({ threads: Math.max(1, Number(event.target.value) || 1) })
              }
            />
          </label>
          <MappingRows
            label="Tablespace mapping"
            testId="tablespace-mapping"
            mappings={draft.tablespaceMapping}
            onChange={(tablespaceMapping) => actions.updateRestore({ tablespaceMapping })}
          />
          <MappingRows
            label="External directory mapping"
            testId="external-mapping"
            mappings={draft.externalMapping}
            onChange={(externalMapping) => actions.updateRestore({ externalMapping })}
          />
          <label className="check">
            <input
              type="checkbox"
              data-testid="restore-as-replica"
              checked={draft.restoreAsReplica}
              onChange={(event) =>
                actions.updateRestore({ restoreAsReplica: event.target.checked })
              }
            />
            Restore as a replica (standby.signal and primary_conninfo)
          </label>
          {draft.restoreAsReplica && (
            <>
              <label className="field">
                <span>primary_conninfo</span>
                <input
                  className="mono grow"
                  placeholder="host=primary port=5432 user=replicator (default: the backup's)"
                  value={draft.primaryConninfo}
                  onChange={(event) =>
                    actions.updateRestore({ primaryConninfo: event.target.value })
                  }
                />
              </label>
              <label className="field">
                <span>Slot</span>
                <input
                  className="mono"
                  value={draft.slotName}
                  onChange={(event) => actions.updateRestore({ slotName: event.target.value })}
                />
              </label>
            </>
          )}
        </div>
        <div>
          <h3>Databases</h3>
          {draft.databases.length === 0 ? (
            <p className="muted">The backup has no database map: every database is restored.</p>
          ) : (
            <>
              <p className="hint">
                Untick databases to leave out (partial restore). template0 and template1 are always
                restored; the files of unticked databases are restored empty and must be dropped
                after the server starts.
              </p>
              <table className="grid compact" data-testid="restore-databases">
                <thead>
                  <tr>
                    <th className="check-col" />
                    <th>Database</th>
                    <th className="num">OID</th>
                    <th className="num">Size</th>
                  </tr>
                </thead>
                <tbody>
                  {draft.databases.map((db) => {
                    const ticked = !draft.excludedDatabases.includes(db.name);
                    return (
                      <tr key={db.oid}>
                        <td>
                          <input
                            type="checkbox"
                            data-testid={`restore-db-${db.name}`}
                            checked={ticked}
                            onChange={() =>
                              actions.updateRestore({
                                excludedDatabases: ticked
                                  ? [...draft.excludedDatabases, db.name]
                                  : draft.excludedDatabases.filter((name) => name !== db.name),
                              })
                            }
                          />
                        </td>
                        <td>{db.name}</td>
                        <td className="num">{db.oid}</td>
                        <td className="num">
                          <Bytes value={db.sizeBytes} />
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
              <p className="muted" data-testid="restore-databases-summary">
                {included
                  ? `${included.length} of ${draft.databases.length} databases`
                  : 'All databases'}
                , {formatBytes(chosenBytes)} of {formatBytes(totalBytes)}
              </p>
            </>
          )}
        </div>
      </div>
    </div>
  );
}

function targetSummary(draft: RestoreDraft): string {
  const values = draft.targetValues;
  switch (draft.targetKind) {
    case 'latest':
      return 'latest: the end of the archived WAL';
    case 'immediate':
      return 'immediate: the backup itself, as soon as it is consistent';
    case 'time':
      return `time ${values.time}`;
    case 'lsn':
      return `LSN ${values.lsn}`;
    case 'xid':
      return `transaction ${values.xid}`;
    case 'name':
      return `restore point "${values.name}"`;
  }
}

function StepReview({ draft }: { draft: RestoreDraft }) {
  const plan = usePlan();
  const planning = useStrata((state) => state.planning);
  const included = includedDatabases(draft);
  return (
    <div className="wizard-body" data-testid="restore-review">
      <dl className="fields">
        <dt>Instance</dt>
        <dd>{draft.instance}</dd>
        <dt>Backup</dt>
        <dd className="mono">
          {plan?.chain.map((backup) => `${backup.id} (${backup.mode})`).join(' → ') ?? '—'}
        </dd>
        <dt>Target</dt>
        <dd>
          {targetSummary(draft)}
          {draft.timeline ? `, timeline ${draft.timeline}` : ''}
          {draft.targetKind !== 'latest' ? `, then ${draft.action}` : ''}
        </dd>
        <dt>WAL</dt>
        <dd className={plan?.walCoversTarget ? 'good' : 'bad'}>
          {plan?.walCoversTarget
            ? 'covers the target'
            : (plan?.problem ?? 'does not cover the target')}
        </dd>
        <dt>Restore on</dt>
        <dd className={draft.destinationHost ? 'mono strong' : ''} data-testid="review-restore-on">
          {restoreLocationLabel(draft)}
        </dd>
        <dt>Destination</dt>
        <dd className="mono">{draft.destination}</dd>
        <dt>Incremental</dt>
        <dd>{draft.incrementalMode}</dd>
        <dt>Databases</dt>
        <dd data-testid="review-databases">{included ? included.join(', ') : 'all'}</dd>
        <dt>As replica</dt>
        <dd>{draft.restoreAsReplica ? 'yes' : 'no'}</dd>
        {draft.tablespaceMapping.length > 0 && (
          <>
            <dt>Tablespaces</dt>
            <dd className="mono">
              {draft.tablespaceMapping.map((m) => `${m.from} → ${m.to}`).join(', ')}
            </dd>
          </>
        )}
        {draft.externalMapping.length > 0 && (
          <>
            <dt>External dirs</dt>
            <dd className="mono">
              {draft.externalMapping.map((m) => `${m.from} → ${m.to}`).join(', ')}
            </dd>
          </>
        )}
      </dl>
      {plan ? (
        <CliCommand command={plan.cliCommand} testId="restore-cli" />
      ) : (
        <p className="muted">{planning ? 'Planning…' : ''}</p>
      )}
    </div>
  );
}

function StepRun({ draft }: { draft: RestoreDraft }) {
  const jobId = useStrata((state) => state.restoreJobId);
  const job = useStrata((state) => (jobId ? state.jobs[jobId] : undefined));
  const log = useStrata((state) => (jobId ? state.jobLogs[jobId] : undefined));
  const actions = useActions();
  if (!job) return <p className="muted">Starting…</p>;
  return (
    <div className="wizard-body" data-testid="restore-run" data-state={job.state}>
      <div className="row">
        <h2 className="grow">{job.title}</h2>
        {job.state === 'running' && (
          <button
            type="button"
            className="danger"
            data-testid="restore-cancel"
            onClick={() => void actions.cancelJob(job.id)}
          >
            Cancel
          </button>
        )}
      </div>
      <JobProgress job={job} />
      {job.state === 'succeeded' && (
        <div className="result good-box" data-testid="restore-result">
          <h2>
            Restored into <span className="mono">{draft.destination}</span>
            {draft.destinationHost && (
              <>
                {' '}
                on <span className="mono">{draft.destinationHost}</span>
              </>
            )}
          </h2>
          <p>What to do next:</p>
          <ol>
            {nextSteps(draft).map((step) => (
              <li key={step}>{step}</li>
            ))}
          </ol>
        </div>
      )}
      {job.state === 'failed' && (
        <div className="result bad-box" data-testid="restore-error">
          <h2>The restore failed</h2>
          <p>{job.error}</p>
          <p className="muted">
            The destination may hold a partial copy: empty it before trying again.
          </p>
        </div>
      )}
      {job.state === 'cancelled' && (
        <div className="result bad-box" data-testid="restore-cancelled">
          <h2>Cancelled</h2>
          <p>The destination holds a partial copy: empty it before restoring again.</p>
        </div>
      )}
      <h3>Log</h3>
      <JobLogView lines={log ?? []} tail={200} testId="restore-log" />
    </div>
  );
}

export function RestoreWizard() {
  const draft = useStrata((state) => state.restore);
  const plan = usePlan();
  const jobId = useStrata((state) => state.restoreJobId);
  const hosts = useStrata((state) => state.hosts);
  const actions = useActions();
  const problem = stepProblem(draft.step, draft, plan, hosts);
  const step = draft.step;
  return (
    <div className="page wizard" data-testid="restore-wizard" data-step={step}>
      <ol className="steps">
        {RESTORE_STEPS.map((name, i) => {
          const number = (i + 1) as RestoreStep;
          return (
            <li
              key={name}
              data-testid={`wizard-step-${number}`}
              className={number === step ? 'active' : number < step ? 'done' : ''}
            >
              <span className="step-number">{number}</span> {name}
            </li>
          );
        })}
      </ol>
      <section className="panel">
        {step === 1 && <StepInstance draft={draft} />}
        {step === 2 && <StepTarget draft={draft} />}
        {step === 3 && <StepPlan />}
        {step === 4 && <StepOptions draft={draft} />}
        {step === 5 && <StepReview draft={draft} />}
        {step === 6 && <StepRun draft={draft} />}
        <div className="wizard-nav">
          {problem && step < 6 && (
            <span className="muted" data-testid="wizard-problem">
              {problem}
            </span>
          )}
          <span className="grow" />
          {step > 1 && step < 6 && (
            <button
              type="button"
              data-testid="wizard-back"
              onClick={() => void actions.goToRestoreStep((step - 1) as RestoreStep)}
            >
              Back
            </button>
          )}
          {step < 5 && (
            <button
              type="button"
              className="primary"
              data-testid="wizard-next"
              disabled={problem !== null}
              onClick={() => void actions.goToRestoreStep((step + 1) as RestoreStep)}
            >
              Next
            </button>
          )}
          {step === 5 && (
            <button
              type="button"
              className="primary"
              data-testid="restore-start"
              disabled={!plan || !plan.walCoversTarget || jobId !== null}
              onClick={() => void actions.startRestore()}
            >
              Restore
            </button>
          )}
          {step === 6 && (
            <button
              type="button"
              data-testid="restore-again"
              onClick={() => actions.beginRestore()}
            >
              New restore
            </button>
          )}
        </div>
      </section>
    </div>
  );
}
