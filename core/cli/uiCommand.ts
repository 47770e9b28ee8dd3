import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStrataApi } from '../api/strataApi.js';
import { startWebServer } from '../api/webServer.js';
import type { CommandContext } from '../commands/context.js';
import { StrataError } from '../errors.js';
import type { Options } from './options.js';

/**
 * `strata ui [--port N] [--demo] [-B catalog]`: serves the desktop app's renderer and StrataApi on
 * 127.0.0.1 (core/api/webServer.ts) until interrupted, and prints the URL with its session token.
 * With `--demo` the demo catalog is made first (or reused) and opened; with `-B` that catalog is.
 */

/** The directory of the running bundle (dist/), where `dist/renderer` is built beside it. */
function bundleDir(): string {
  return dirname(fileURLToPath(import.meta.url));
}

function portOption(options: Options): number {
  const text = options.string('port');
  if (text === undefined) return 0;
  const port = /^\d{1,5}$/.test(text) ? Number(text) : -1;
  if (port < 0 || port > 65_535)
    throw new StrataError('usage', `Option --port should be a TCP port (0 to 65535): '${text}'`);
  return port;
}

export async function runUiCommand(
  ctx: CommandContext,
  options: Options,
  env: { stdout: (text: string) => void; backupPath: string | undefined; strataCommand: string },
): Promise<number> {
  const port = portOption(options);
  const api = createStrataApi({
    storage: ctx.storage,
    strataCommand: env.strataCommand,
    searchDirs: [process.cwd(), bundleDir()],
  });
  let catalog = env.backupPath;
  if (options.flag('demo')) {
    catalog = (await api.demoCatalog()) ?? undefined;
    if (catalog === undefined) {
      ctx.logger.info(
        'Creating the demo catalog: a sandbox PostgreSQL cluster, backups and archived WAL (about a minute)',
      );
      const job = await api.startDemo();
      const unsubscribe = api.subscribe((event) => {
        if (event.type === 'log' && event.line.jobId === job.id)
          ctx.logger.log(event.line.level, event.line.message);
      });
      const onAbort = () => void api.cancelJob(job.id);
      ctx.signal?.addEventListener('abort', onAbort);
      const ended = await api.waitForJob(job.id);
      ctx.signal?.removeEventListener('abort', onAbort);
      unsubscribe();
      // The job's own ERROR line has been printed with its log.
      if (ended.state !== 'succeeded') return 1;
      catalog = (await api.demoCatalog()) ?? undefined;
    }
  }
  if (ctx.signal?.aborted) return 1;
  const server = await startWebServer({
    api,
    storage: ctx.storage,
    staticDir: process.env['STRATA_RENDERER_DIR'] ?? join(bundleDir(), 'renderer'),
    port,
  });
  const url =
    catalog === undefined ? server.url : `${server.url}&catalog=${encodeURIComponent(catalog)}`;
  env.stdout(`Strata UI: ${url}\n`);
  await new Promise<void>((resolveStop) => {
    if (ctx.signal === undefined || ctx.signal.aborted) return resolveStop();
    ctx.signal.addEventListener('abort', () => resolveStop(), { once: true });
  });
  for (const job of await api.listJobs()) if (job.state === 'running') await api.cancelJob(job.id);
  await server.close();
  await api.close();
  return 0;
}
