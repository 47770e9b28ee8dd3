import { useEffect, useState } from 'react';
import type { ReactNode } from 'react';
import { compressionRatio } from '../format.js';
import { useActions, useStrata } from '../store/context.js';
import { Bytes, Duration, Lsn, StatusBadge, Time } from './common.js';

function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </>
  );
}

function FilesList() {
  const files = useStrata((state) => state.files);
  const actions = useActions();
  const [filter, setFilter] = useState(files?.pathFilter ?? '');
  useEffect(() => setFilter(files?.pathFilter ?? ''), [files?.backupId, files?.pathFilter]);
  if (!files) return null;
  const last = Math.min(files.offset + files.files.length, files.total);
  return (
    <section data-testid="backup-files">
      <h3>Files</h3>
      <form
        className="row"
        onSubmit={(event) => {
          event.preventDefault();
          void actions.loadFiles(0, filter);
        }}
      >
        <input
          className="grow mono"
          data-testid="files-filter"
          placeholder="path contains…"
          value={filter}
          onChange={(event) => setFilter(event.target.value)}
        />
        <button type="submit">Filter</button>
      </form>
      <div className="row pager">
        <button
          type="button"
          disabled={files.offset === 0}
          onClick={() => void actions.loadFiles(files.offset - files.limit, files.pathFilter)}
        >
          ◀
        </button>
        <span className="muted" data-testid="files-range">
          {files.total === 0 ? 'no files' : `${files.offset + 1}–${last} of ${files.total}`}
        </span>
        <button
          type="button"
          disabled={last >= files.total}
          onClick={() => void actions.loadFiles(files.offset + files.limit, files.pathFilter)}
        >
          ▶
        </button>
      </div>
      <table className="grid compact">
        <thead>
          <tr>
            <th>Path</th>
            <th className="num">Stored</th>
            <th className="num">Size</th>
            <th>Z</th>
          </tr>
        </thead>
        <tbody>
          {files.files.map((file) => (
            <tr key={`${file.externalDirNum}:${file.path}`}>
              <td
                className="mono path"
                title={
                  file.externalDirNum > 0 ? `external directory ${file.externalDirNum}` : file.path
                }
              >
                {file.externalDirNum > 0 ? `[ext ${file.externalDirNum}] ` : ''}
                {file.path}
              </td>
              <td className="num">
                {file.storedBytes === -1 ? (
                  <span className="muted" title="unchanged since the parent backup">
                    unchanged
                  </span>
                ) : (
                  <Bytes value={file.storedBytes} />
                )}
              </td>
              <td className="num">
                <Bytes value={file.fullBytes} />
              </td>
              <td>{file.compressAlg === 'none' ? '' : file.compressAlg}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function BackupDetailsPanel() {
  const details = useStrata((state) => state.details);
  const focusedId = useStrata((state) => state.focusedBackupId);
  const actions = useActions();
  if (!details || details.id !== focusedId) {
    return (
      <aside className="details" data-testid="backup-details">
        <p className="muted">Loading {focusedId}…</p>
      </aside>
    );
  }
  const duration = details.endTime === null ? null : details.endTime - details.startTime;
  return (
    <aside className="details" data-testid="backup-details" data-backup-id={details.id}>
      <div className="details-head">
        <h2>
          Backup <span className="mono">{details.id}</span> <StatusBadge status={details.status} />
        </h2>
        <button
          type="button"
          className="link"
          onClick={() => void actions.focusBackup(null)}
          aria-label="Close details"
        >
          ✕
        </button>
      </div>
      <div className="row">
        <button
          type="button"
          className="primary"
          data-testid="details-restore"
          onClick={() => actions.beginRestore({ backupId: details.id })}
        >
          Restore from this backup…
        </button>
        <button
          type="button"
          onClick={() =>
            actions.openDialog({
              kind: 'action',
              action: 'validate',
              backupIds: [details.id],
              jobIds: [],
            })
          }
        >
          Validate…
        </button>
      </div>
      <dl className="fields">
        <Field label="Mode">
          {details.mode ?? '—'} · {details.walMode}
        </Field>
        <Field label="Parent">
          <span className="mono">{details.parentId ?? '—'}</span>
        </Field>
        <Field label="Chain">
          <span className="mono" data-testid="details-chain">
            {details.chain.join(' → ')}
          </span>
        </Field>
        <Field label="Timeline">
          {details.timelineId}
          {details.parentTimelineId > 0 && details.parentTimelineId !== details.timelineId
            ? ` (branched off ${details.parentTimelineId})`
            : ''}
        </Field>
        <Field label="Start LSN">
          <Lsn value={details.startLsn} />
        </Field>
        <Field label="Stop LSN">
          <Lsn value={details.stopLsn} />
        </Field>
        <Field label="Started">
          <Time unix={details.startTime} />
        </Field>
        <Field label="Finished">
          <Time unix={details.endTime} /> (<Duration seconds={duration} />)
        </Field>
        <Field label="Recovery time">
          <Time unix={details.recoveryTime} />
        </Field>
        <Field label="Recovery xid">
          <span className="mono">{details.recoveryXid}</span>
        </Field>
        <Field label="Data">
          <Bytes value={details.dataBytes} /> stored, <Bytes value={details.uncompressedBytes} />{' '}
          uncompressed (ratio {compressionRatio(details.uncompressedBytes, details.dataBytes)})
        </Field>
        <Field label="WAL">
          <Bytes value={details.walBytes} />
        </Field>
        <Field label="PGDATA">
          <Bytes value={details.pgdataBytes} />
        </Field>
        <Field label="Compression">
          {details.compressAlg}
          {details.compressAlg !== 'none' && details.compressLevel > 0
            ? ` level ${details.compressLevel}`
            : ''}
        </Field>
        <Field label="PostgreSQL">{details.serverVersion ?? '—'}</Field>
        <Field label="Made by">
          {details.programVersion ? `program ${details.programVersion}` : '—'}
        </Field>
        <Field label="From replica">{details.fromReplica ? 'yes' : 'no'}</Field>
        <Field label="Pinned until">
          <Time unix={details.expireTime} />
        </Field>
        <Field label="Note">{details.note ?? '—'}</Field>
      </dl>
      <section>
        <h3>Databases</h3>
        {details.databases.length === 0 ? (
          <p className="muted">
            No database map (made by an older version): partial restore is not possible.
          </p>
        ) : (
          <table className="grid compact" data-testid="backup-databases">
            <thead>
              <tr>
                <th>Name</th>
                <th className="num">OID</th>
                <th className="num">Size</th>
              </tr>
            </thead>
            <tbody>
              {details.databases.map((database) => (
                <tr key={database.oid}>
                  <td>{database.name}</td>
                  <td className="num">{database.oid}</td>
                  <td className="num">
                    <Bytes value={database.sizeBytes} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {details.tablespaces.length > 0 && (
        <section>
          <h3>Tablespaces</h3>
          <ul className="plain mono">
            {details.tablespaces.map((tablespace) => (
              <li key={tablespace.oid}>
                {tablespace.oid} → {tablespace.path}
              </li>
            ))}
          </ul>
        </section>
      )}
      {details.externalDirs.length > 0 && (
        <section>
          <h3>External directories</h3>
          <ul className="plain mono">
            {details.externalDirs.map((dir) => (
              <li key={dir}>{dir}</li>
            ))}
          </ul>
        </section>
      )}
      <FilesList />
    </aside>
  );
}
