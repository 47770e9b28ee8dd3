import type { StrataApi } from '../../core/api/contract.js';
import { httpStrataApiFromLocation } from '../../core/api/httpClient.js';

/**
 * The one StrataApi the UI talks to: Electron's preload puts it on `window.strata` (contextBridge);
 * a page served by `strata ui` reaches the same API over HTTP and a WebSocket, with the session
 * token from its own URL (`?token=`).
 */
export function connectApi(page: Window & { strata?: StrataApi }): StrataApi {
  return page.strata ?? httpStrataApiFromLocation(page.location);
}
