import { useEffect } from 'react';
import { useActions, useStrata } from '../store/context.js';
import { remoteLocationParts } from '../../../core/api/catalogLocation.js';
import type { View } from '../store/strataStore.js';
import { ActionDialog } from './ActionDialog.js';
import { BackupDialog } from './BackupDialog.js';
import { BackupsView } from './BackupsView.js';
import { CatalogsView } from './CatalogsView.js';
import { ChainsView } from './ChainsView.js';
import { HostKeyDialog, PassphraseDialog } from './HostsPanel.js';
import { JobsView } from './JobsView.js';
import { RestoreWizard } from './RestoreWizard.js';
import { TimelineView } from './TimelineView.js';

const TABS: Array<{ view: View; label: string; needsInstance: boolean }> = [
  { view: 'catalogs', label: 'Catalogs', needsInstance: false },
  { view: 'backups', label: 'Backups', needsInstance: true },
  { view: 'chains', label: 'Chains', needsInstance: true },
  { view: 'timeline', label: 'WAL timeline', needsInstance: true },
  { view: 'restore', label: 'Restore', needsInstance: true },
  { view: 'jobs', label: 'Jobs', needsInstance: false },
];

function Header() {
  const view = useStrata((state) => state.view);
  const catalog = useStrata((state) => state.catalog);
  const instance = useStrata((state) => state.instance);
  const jobs = useStrata((state) => state.jobs);
  const actions = useActions();
  const running = Object.values(jobs).filter((job) => job.state === 'running').length;
  const remoteCatalog = catalog ? remoteLocationParts(catalog.backupPath) : undefined;
  return (
    <header className="app-header">
      <div className="brand">Strata</div>
      <nav className="tabs">
        {TABS.map((tab) => (
          <button
            key={tab.view}
            type="button"
            data-testid={`tab-${tab.view}`}
            className={view === tab.view ? 'tab active' : 'tab'}
            disabled={tab.needsInstance && !instance}
            onClick={() =>
              tab.view === 'restore' && view !== 'restore'
                ? actions.beginRestore()
                : actions.setView(tab.view)
            }
          >
            {tab.label}
            {tab.view === 'jobs' && running > 0 ? <span className="badge">{running}</span> : null}
          </button>
        ))}
      </nav>
      <div className="header-context">
        {catalog ? (
          <>
            <span className="mono catalog-path" title={catalog.backupPath}>
              {catalog.backupPath}
            </span>
            <select
              data-testid="instance-select"
              value={instance ?? ''}
              onChange={(event) => void actions.selectInstance(event.target.value)}
            >
              {catalog.instances.map((candidate) => (
                <option key={candidate.name} value={candidate.name}>
                  {candidate.name}
                </option>
              ))}
            </select>
            <button
              type="button"
              onClick={() => void actions.refresh()}
              title="Read the catalog again"
            >
              Refresh
            </button>
            <button
              type="button"
              className="primary"
              data-testid="open-backup-dialog"
              disabled={!instance || remoteCatalog !== undefined}
              title={
                remoteCatalog
                  ? `Backups run on the host of their catalog: for this one, run strata backup on ${remoteCatalog.hostId}`
                  : undefined
              }
              onClick={() => actions.openDialog({ kind: 'backup', jobId: null })}
            >
              Backup…
            </button>
          </>
        ) : (
          <span className="muted">No catalog open</span>
        )}
      </div>
    </header>
  );
}

function ErrorBanner() {
  const error = useStrata((state) => state.error);
  const actions = useActions();
  if (!error) return null;
  return (
    <div className="error-banner" role="alert" data-testid="error-banner">
      <span>{error}</span>
      <button type="button" className="link" onClick={() => actions.dismissError()}>
        Dismiss
      </button>
    </div>
  );
}

export function App({ initialCatalog }: { initialCatalog: string | null }) {
  const view = useStrata((state) => state.view);
  const dialog = useStrata((state) => state.dialog);
  const actions = useActions();
  useEffect(() => {
    void actions.loadStart(initialCatalog);
  }, [actions, initialCatalog]);
  return (
    <div className="app">
      <Header />
      <ErrorBanner />
      <main className="app-main" data-testid={`view-${view}`}>
        {view === 'catalogs' && <CatalogsView />}
        {view === 'backups' && <BackupsView />}
        {view === 'chains' && <ChainsView />}
        {view === 'timeline' && <TimelineView />}
        {view === 'restore' && <RestoreWizard />}
        {view === 'jobs' && <JobsView />}
      </main>
      {dialog?.kind === 'backup' && <BackupDialog jobId={dialog.jobId} />}
      {dialog?.kind === 'action' && <ActionDialog dialog={dialog} />}
      {dialog?.kind === 'host-key' && <HostKeyDialog dialog={dialog} />}
      {dialog?.kind === 'passphrase' && <PassphraseDialog dialog={dialog} />}
    </div>
  );
}
