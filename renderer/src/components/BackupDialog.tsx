import { useState } from 'react';
import type { BackupModeName, BackupRequest, CompressionName } from '../../../core/api/contract.js';
import { backupCommandLine } from '../../../core/api/cliCommand.js';
import { useActions, useStrata } from '../store/context.js';
import { CliCommand, JobLogView, JobProgress, Modal } from './common.js';

const MODES: Array<{ mode: BackupModeName; hint: string }> = [
  { mode: 'FULL', hint: 'every file' },
  { mode: 'DELTA', hint: 'pages changed since the parent, found by reading every page' },
  { mode: 'PAGE', hint: 'pages changed since the parent, found in archived WAL' },
  { mode: 'PTRACK', hint: 'pages changed since the parent, from the ptrack extension' },
  {
    mode: 'SUMMARY',
    hint: 'pages changed since the parent, from WAL summaries (PostgreSQL 17+, Strata only)',
  },
];
const COMPRESSIONS: CompressionName[] = ['none', 'zlib', 'pglz', 'lz4', 'zstd'];
const TTL_UNITS = [
  { label: 'days', seconds: 86400 },
  { label: 'hours', seconds: 3600 },
] as const;

interface BackupForm {
  mode: BackupModeName;
  stream: boolean;
  compressAlg: CompressionName;
  compressLevel: number;
  threads: number;
  note: string;
  ttl: string;
  ttlUnit: number;
  host: string;
  port: string;
  user: string;
  database: string;
}

function requestOf(form: BackupForm): Omit<BackupRequest, 'backupPath' | 'instance'> {
  const request: Omit<BackupRequest, 'backupPath' | 'instance'> = {
    mode: form.mode,
    stream: form.stream,
  };
  if (form.compressAlg !== 'none') {
    request.compressAlg = form.compressAlg;
    request.compressLevel = form.compressLevel;
  }
  if (form.threads > 1) request.threads = form.threads;
  if (form.note.trim() !== '') request.note = form.note.trim();
  const ttl = Number(form.ttl);
  if (form.ttl.trim() !== '' && Number.isFinite(ttl) && ttl > 0)
    request.ttlSeconds = Math.round(ttl * form.ttlUnit);
  const connection: NonNullable<BackupRequest['connection']> = {};
  if (form.host.trim()) connection.host = form.host.trim();
  if (/^\d+$/.test(form.port.trim())) connection.port = Number(form.port.trim());
  if (form.user.trim()) connection.user = form.user.trim();
  if (form.database.trim()) connection.database = form.database.trim();
  if (Object.keys(connection).length > 0) request.connection = connection;
  return request;
}

export function BackupDialog({ jobId }: { jobId: string | null }) {
  const catalog = useStrata((state) => state.catalog);
  const instance = useStrata((state) => state.instance);
  const backups = useStrata((state) => state.backups);
  const job = useStrata((state) => (jobId ? state.jobs[jobId] : undefined));
  const log = useStrata((state) => (jobId ? state.jobLogs[jobId] : undefined));
  const actions = useActions();
  const hasFull = backups.some(
    (backup) => backup.mode === 'FULL' && (backup.status === 'OK' || backup.status === 'DONE'),
  );
  const [form, setForm] = useState<BackupForm>({
    mode: hasFull ? 'DELTA' : 'FULL',
    stream: true,
    compressAlg: 'none',
    compressLevel: 1,
    threads: 1,
    note: '',
    ttl: '',
    ttlUnit: 86400,
    host: '',
    port: '',
    user: '',
    database: '',
  });
  if (!catalog || !instance) return null;
  const update = (patch: Partial<BackupForm>) => setForm((current) => ({ ...current, ...patch }));
  const request = requestOf(form);
  const command = backupCommandLine({ ...request, backupPath: catalog.backupPath, instance });
  return (
    <Modal
      title={`Backup of ${instance}`}
      onClose={() => actions.closeDialog()}
      testId="backup-dialog"
      wide
    >
      {!job ? (
        <form
          className="form-grid"
          onSubmit={(event) => {
            event.preventDefault();
            void actions.startBackup(request);
          }}
        >
          <fieldset>
            <legend>Mode</legend>
            {MODES.map(({ mode, hint }) => (
              <label key={mode} className="check">
                <input
                  type="radio"
                  name="mode"
                  data-testid={`backup-mode-${mode}`}
                  checked={form.mode === mode}
                  disabled={mode !== 'FULL' && !hasFull}
                  onChange={() => update({ mode })}
                />
                <span className="strong">{mode}</span> <span className="muted">{hint}</span>
              </label>
            ))}
            {!hasFull && (
              <p className="hint">Incremental modes need a valid FULL backup to build on.</p>
            )}
          </fieldset>
          <fieldset>
            <legend>WAL</legend>
            <label className="check">
              <input
                type="radio"
                name="wal"
                data-testid="backup-stream"
                checked={form.stream}
                onChange={() => update({ stream: true })}
              />
              STREAM: the backup carries its own WAL (restorable alone)
            </label>
            <label className="check">
              <input
                type="radio"
                name="wal"
                data-testid="backup-archive"
                checked={!form.stream}
                onChange={() => update({ stream: false })}
              />
              ARCHIVE: uses WAL from the archive (needs archive_command)
            </label>
          </fieldset>
          <fieldset>
            <legend>Options</legend>
            <label className="field">
              <span>Compression</span>
              <select
                data-testid="backup-compression"
                value={form.compressAlg}
                onChange={(event) => update({ compressAlg: event.target.value as CompressionName })}
              >
                {COMPRESSIONS.map((alg) => (
                  <option key={alg} value={alg}>
                    {alg}
                  </option>
                ))}
              </select>
              <input
                type="number"
                className="short"
                min={0}
                max={form.compressAlg === 'zstd' ? 19 : 9}
                disabled={form.compressAlg === 'none'}
                aria-label="Compression level"
                value={form.compressLevel}
                onChange={(event) => update({ compressLevel: Number(event.target.value) })}
              />
            </label>
            <label className="field">
              <span>Threads</span>
              <input
                type="number"
                className="short"
                min={1}
                max={128}
                data-testid="backup-threads"
                value={form.threads}
                onChange={(event) =>
                  update({ threads: Math.max(1, Number(event.target.value) || 1) })
                }
              />
            </label>
            <label className="field">
              <span>Note</span>
              <input
                className="grow"
                data-testid="backup-note"
                maxLength={1024}
                value={form.note}
                onChange={(event) => update({ note: event.target.value })}
              />
            </label>
            <label className="field">
              <span>Keep for</span>
              <input
                className="short"
                data-testid="backup-ttl"
                placeholder="—"
                value={form.ttl}
                onChange={(event) => update({ ttl: event.target.value })}
              />
              <select
                value={form.ttlUnit}
                onChange={(event) => update({ ttlUnit: Number(event.target.value) })}
              >
                {TTL_UNITS.map((unit) => (
                  <option key={unit.label} value={unit.seconds}>
                    {unit.label}
                  </option>
                ))}
              </select>
              <span className="muted">pins the backup against retention</span>
            </label>
          </fieldset>
          <fieldset>
            <legend>Connection (empty: the instance&apos;s configuration)</legend>
            <div className="row">
              <input
                placeholder="host"
                data-testid="backup-host"
                value={form.host}
                onChange={(event) => update({ host: event.target.value })}
              />
              <input
                placeholder="port"
                className="short"
                data-testid="backup-port"
                value={form.port}
                onChange={(event) => update({ port: event.target.value })}
              />
              <input
                placeholder="user"
                data-testid="backup-user"
                value={form.user}
                onChange={(event) => update({ user: event.target.value })}
              />
              <input
                placeholder="database"
                data-testid="backup-database"
                value={form.database}
                onChange={(event) => update({ database: event.target.value })}
              />
            </div>
          </fieldset>
          <CliCommand command={command} testId="backup-cli" />
          <div className="row end">
            <button type="button" onClick={() => actions.closeDialog()}>
              Cancel
            </button>
            <button type="submit" className="primary" data-testid="backup-start">
              Start backup
            </button>
          </div>
        </form>
      ) : (
        <div data-testid="backup-job" data-state={job.state}>
          <p>{job.title}</p>
          <JobProgress job={job} />
          {job.error && <p className="bad">{job.error}</p>}
          <JobLogView lines={log ?? []} tail={200} testId="backup-log" />
          <CliCommand command={job.cliCommand} />
          <div className="row end">
            {job.state === 'running' && (
              <button
                type="button"
                className="danger"
                onClick={() => void actions.cancelJob(job.id)}
              >
                Cancel backup
              </button>
            )}
            <button type="button" onClick={() => actions.closeDialog()}>
              {job.state === 'running' ? 'Run in background' : 'Close'}
            </button>
          </div>
        </div>
      )}
    </Modal>
  );
}
