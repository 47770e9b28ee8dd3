import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import { runAgentServer } from './agentServer.js';
import { PAGE_WORKER_ROLE, servePageJobs } from './pageWorkers.js';

// The agent's entry point, bundled into one file (dist/strata-agent.mjs) that Strata copies to a
// remote host and runs there with that host's Node.js over an SSH exec channel. stdout carries
// only protocol frames; diagnostics go to stderr, which the client shows when the agent fails.
// The same file, started as a worker thread with the page-worker role, runs page jobs.
const agentFile = fileURLToPath(import.meta.url);

if (parentPort && (workerData as { role?: string } | undefined)?.role === PAGE_WORKER_ROLE) {
  servePageJobs(parentPort);
} else {
  const agentHash = createHash('sha256').update(readFileSync(agentFile)).digest('hex');
  process.stdout.on('error', () => process.exit(1));
  try {
    await runAgentServer(process.stdin, process.stdout, { agentHash, workerScript: agentFile });
    process.stdout.end(() => process.exit(0));
  } catch (error) {
    process.stderr.write(
      `strata agent: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  }
}
