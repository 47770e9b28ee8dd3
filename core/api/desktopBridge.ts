/**
 * What the Electron preload exposes besides `window.strata` (the StrataApi): the native pieces a
 * browser page cannot have. The renderer uses `window.strataDesktop` when it is present (the
 * desktop app) and falls back to typed paths in web mode (`strata ui`). Types only, browser-safe.
 */
export interface DesktopBridge {
  /** The native folder picker; null when the user cancels. */
  chooseCatalogDirectory(): Promise<string | null>;
  /** File → Open Catalog… and Help → Open the Demo in the menu: the catalog to open. */
  onOpenCatalog(listener: (backupPath: string) => void): () => void;
}
