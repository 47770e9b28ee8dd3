import { useState } from 'react';
import { useActions, useStrata } from '../store/context.js';
import { formatBytes } from '../format.js';
import {
  catalogLocation,
  hostMatchingRemote,
  remoteLabel,
  splitCatalogLocation,
} from '../store/hosts.js';
import { StatusBadge, Time } from './common.js';
import { HostsPanel } from './HostsPanel.js';

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
  const hosts = useStrata((state) => state.hosts);
  const actions = useActions();
  const catalogPath = catalog?.backupPath ?? '';
  const [location, setLocation] = useState(() => splitCatalogLocation(catalogPath, hosts));
  // A catalog opened from elsewhere (a recent entry, the menu, a host that connected) is shown here.
  const [shownCatalog, setShownCatalog] = useState(catalogPath);
  if (catalogPath !== shownCatalog) {
    setShownCatalog(catalogPath);
    setLocation(splitCatalogLocation(catalogPath, hosts));
  }
  const connected = hosts.filter((host) => host.connected);
  // A host chosen before it dropped stays in the list, so the select still shows the choice.
  const chosenHostListed =
    location.hostId === null || connected.some((host) => host.id === location.hostId);
  const open = (wanted: string) => {
    setLocation(splitCatalogLocation(wanted, hosts));
    void actions.openCatalog(wanted);
  };
  return (
    <section className="panel">
      <h2>Open a catalog</h2>
      <p className="hint">
        The folder given to <code>init -B</code>: it holds <code>backups/</code> and{' '}
        <code>wal/</code>. Catalogs made by pg_probackup 2.5 open as they are. A catalog on another
        computer opens through a host connected below.
      </p>
      <form
        className="row"
        onSubmit={(event) => {
          event.preventDefault();
          void actions.openCatalog(catalogLocation(location.hostId, location.path));
        }}
      >
        <label className="inline-field">
          <span className="muted">On</span>
          <select
            data-testid="catalog-host"
            value={location.hostId ?? ''}
            onChange={(event) => setLocation({ ...location, hostId: event.target.value || null })}
          >
            <option value="">This computer</option>
            {connected.map((host) => (
              <option key={host.id} value={host.id}>
                {host.id}
              </option>
            ))}
            {!chosenHostListed && (
              <option value={location.hostId!}>{location.hostId} (not connected)</option>
            )}
          </select>
        </label>
        <input
          data-testid="catalog-path"
          className="grow mono"
          placeholder="/var/lib/pg_probackup"
          value={location.path}
          onChange={(event) => setLocation({ ...location, path: event.target.value })}
        />
        {canChooseDirectory && location.hostId === null && (
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
              onClick={() => open(recentPath)}
            >
              {recentPath}
            </button>
          ))}
        </div>
      )}
      <div className="demo">
        {demo ? (
          <button type="button" className="link" onClick={() => open(demo)}>
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

/**
 * Instances whose pg_probackup.conf names a database host (`remote-host`) that is not connected:
 * backups of them are taken there, and restores default to it once it is connected.
 */
function RemoteInstancesHint() {
  const catalog = useStrata((state) => state.catalog);
  const hosts = useStrata((state) => state.hosts);
  const actions = useActions();
  const unconnected = (catalog?.instances ?? []).filter(
    (instance) => instance.remote !== null && hostMatchingRemote(hosts, instance.remote) === null,
  );
  if (unconnected.length === 0) return null;
  return (
    <div className="note-box" data-testid="remote-instance-hint">
      {unconnected.map((instance) => (
        <div key={instance.name} className="row" data-testid={`remote-instance-${instance.name}`}>
          <span className="grow">
            The configuration of <span className="strong">{instance.name}</span> names the database
            host <span className="mono">{remoteLabel(instance.remote!)}</span> (remote-host), which
            is not connected: its backups run there, and a restore can go there once it is.
          </span>
          <button
            type="button"
            data-testid={`remote-instance-fill-${instance.name}`}
            onClick={() => actions.prefillHostFormFromInstance(instance.name, instance.remote!)}
          >
            Fill in the connection form
          </button>
        </div>
      ))}
    </div>
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
      <RemoteInstancesHint />
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
              <th>Database host</th>
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
                <td className="mono">{instance.remote ? remoteLabel(instance.remote) : 'local'}</td>
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
      <HostsPanel />
      <InstancesTable />
    </div>
  );
}
