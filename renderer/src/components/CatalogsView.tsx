import { useState } from 'react';
import { useActions, useStrata } from '../store/context.js';
import { formatBytes } from '../format.js';
import { StatusBadge, Time } from './common.js';

function retentionText(retention: {
  redundancy: number;
  windowDays: number;
  walDepth: number;
}): string {
  const parts: string[] = [];
  if (retention.redundancy > 0) parts.push(`redundancy ${retention.redundancy}`);
  if (retention.windowDays > 0) parts.push(`window ${retention.windowDays} d`);
  if (retention.walDepth > 0) parts.push(`wal-depth ${retention.walDepth}`);
  return parts.length > 0 ? parts.join(', ') : 'none (keep everything)';
}

function OpenCatalogForm() {
  const catalog = useStrata((state) => state.catalog);
  const recent = useStrata((state) => state.recentCatalogs);
  const demo = useStrata((state) => state.demoCatalog);
  const busy = useStrata((state) => state.busy);
  const canChooseDirectory = useStrata((state) => state.canChooseDirectory);
  const actions = useActions();
  const [path, setPath] = useState(catalog?.backupPath ?? '');
  return (
    <section className="panel">
      <h2>Open a catalog</h2>
      <p className="hint">
        The folder given to <code>init -B</code>: it holds <code>backups/</code> and{' '}
        <code>wal/</code>. Catalogs made by pg_probackup 2.5 open as they are.
      </p>
      <form
        className="row"
        onSubmit={(event) => {
          event.preventDefault();
          void actions.openCatalog(path);
        }}
      >
        <input
          data-testid="catalog-path"
          className="grow mono"
          placeholder="/var/lib/pg_probackup"
          value={path}
          onChange={(event) => setPath(event.target.value)}
        />
        {canChooseDirectory && (
          <button type="button" onClick={() => void actions.chooseCatalogDirectory()}>
            Browse…
          </button>
        )}
        <button type="submit" className="primary" data-testid="open-catalog" disabled={busy}>
          Open
        </button>
      </form>
      {recent.length > 0 && (
        <div className="recent" data-testid="recent-catalogs">
          <span className="muted">Recent:</span>
          {recent.map((recentPath) => (
            <button
              key={recentPath}
              type="button"
              className="link mono"
              onClick={() => {
                setPath(recentPath);
                void actions.openCatalog(recentPath);
              }}
            >
              {recentPath}
            </button>
          ))}
        </div>
      )}
      <div className="demo">
        {demo ? (
          <button type="button" className="link" onClick={() => void actions.openCatalog(demo)}>
            Open the demo catalog ({demo})
          </button>
        ) : (
          <>
            <span className="muted">New to Strata? </span>
            <button
              type="button"
              className="link"
              data-testid="start-demo"
              onClick={() => void actions.startDemo()}
            >
              Make a demo catalog
            </button>
            <span className="muted">
              {' '}
              — a sandbox PostgreSQL cluster with data, FULL and incremental backups and archived
              WAL, made by Strata itself.
            </span>
          </>
        )}
      </div>
    </section>
  );
}

function InstancesTable() {
  const catalog = useStrata((state) => state.catalog);
  const current = useStrata((state) => state.instance);
  const actions = useActions();
  if (!catalog) return null;
  return (
    <section className="panel">
      <h2>
        Instances in <span className="mono">{catalog.backupPath}</span>
      </h2>
      {catalog.instances.length === 0 ? (
        <p className="muted">
          No instance yet: add one with <code>strata add-instance</code>.
        </p>
      ) : (
        <table className="grid" data-testid="instances-table">
          <thead>
            <tr>
              <th>Instance</th>
              <th>PostgreSQL</th>
              <th>System identifier</th>
              <th>PGDATA</th>
              <th className="num">WAL segment</th>
              <th className="num">Backups</th>
              <th>Last backup</th>
              <th>Status</th>
              <th>Finished</th>
              <th>Retention</th>
            </tr>
          </thead>
          <tbody>
            {catalog.instances.map((instance) => (
              <tr
                key={instance.name}
                data-testid={`instance-row-${instance.name}`}
                className={instance.name === current ? 'clickable selected' : 'clickable'}
                onClick={() => {
                  void actions.selectInstance(instance.name);
                  actions.setView('backups');
                }}
              >
                <td className="strong">{instance.name}</td>
                <td>{instance.serverVersion ?? '—'}</td>
                <td className="mono">{instance.systemIdentifier}</td>
                <td className="mono">{instance.pgdata ?? '—'}</td>
                <td className="num" title={`${instance.walSegmentSizeBytes} bytes`}>
                  {formatBytes(instance.walSegmentSizeBytes)}
                </td>
                <td className="num" data-testid="instance-backup-count">
                  {instance.backupCount}
                </td>
                <td className="mono">{instance.lastBackup?.id ?? '—'}</td>
                <td>
                  {instance.lastBackup ? <StatusBadge status={instance.lastBackup.status} /> : '—'}
                </td>
                <td>
                  <Time unix={instance.lastBackup?.endTime ?? null} />
                </td>
                <td>{retentionText(instance.retention)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function CatalogsView() {
  return (
    <div className="page">
      <OpenCatalogForm />
      <InstancesTable />
    </div>
  );
}
