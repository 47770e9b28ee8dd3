import type { ApiMethodName } from '../core/api/methods.js';

/**
 * IPC channel names shared by the main process (ipc.ts) and the preload: one invoke channel per
 * StrataApi method, one event channel, and the desktop bridge's channels.
 */
export const API_CHANNEL_PREFIX = 'strata:api:';
export const EVENT_CHANNEL = 'strata:event';
export const CHOOSE_DIRECTORY_CHANNEL = 'strata:desktop:choose-directory';
export const OPEN_CATALOG_CHANNEL = 'strata:desktop:open-catalog';

export function apiChannel(method: ApiMethodName): string {
  return `${API_CHANNEL_PREFIX}${method}`;
}
