import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import type { DesktopBridge } from '../../core/api/desktopBridge.js';
import { connectApi } from './api.js';
import { App } from './components/App.js';
import { StoreProvider } from './store/context.js';
import { createStrataStore } from './store/strataStore.js';
import type { RecentCatalogStore } from './store/strataStore.js';

const RECENT_KEY = 'strata.recentCatalogs';

/** Recently opened catalogs survive a restart of the app (localStorage of the app's origin). */
const recents: RecentCatalogStore = {
  load() {
    try {
      const stored: unknown = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '[]');
      return Array.isArray(stored)
        ? stored.filter((path): path is string => typeof path === 'string')
        : [];
    } catch {
      return [];
    }
  },
  save(paths) {
    localStorage.setItem(RECENT_KEY, JSON.stringify(paths));
  },
};

const page = window as Window & { strataDesktop?: DesktopBridge };
const store = createStrataStore(connectApi(window), recents, page.strataDesktop);
page.strataDesktop?.onOpenCatalog((backupPath) => {
  void store.getState().openCatalog(backupPath);
  store.getState().setView('backups');
});
// `strata ui -B <catalog>` and `--demo` print a URL that names the catalog to open.
const initialCatalog = new URLSearchParams(location.search).get('catalog');
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <StoreProvider store={store}>
      <App initialCatalog={initialCatalog} />
    </StoreProvider>
  </StrictMode>,
);
