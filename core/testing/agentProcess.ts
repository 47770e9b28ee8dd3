import { spawn } from 'node:child_process';
import { agentBundlePath } from '../remote/agentBundle.js';
import { AgentSession, type AgentTransport } from '../remote/session.js';

/**
 * The built agent (dist/strata-agent.mjs, or `bundlePath`) run as a child process of this one,
 * its stdio as the transport: the same agent and protocol as over SSH, without the SSH server, for
 * tests of the Storage contract and the page jobs.
 */
export async function startLocalAgent(
  bundlePath = agentBundlePath(),
): Promise<{ session: AgentSession; pid: number; kill: () => void }> {
  const child = spawn(process.execPath, [bundlePath], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exitCallbacks: Array<(reason: string) => void> = [];
  let ended: string | undefined;
  child.once('exit', (code, signal) => {
    ended = signal
      ? `the agent was killed by signal ${signal}`
      : `the agent exited with status ${String(code)}`;
    for (const callback of exitCallbacks) callback(ended);
  });
  const transport: AgentTransport = {
    input: child.stdout,
    output: child.stdin,
    stderr: child.stderr,
    description: `local agent pid ${child.pid}`,
    onExit(callback) {
      if (ended !== undefined) callback(ended);
      else exitCallbacks.push(callback);
    },
    close() {
      child.stdin.end();
    },
  };
  const session = await AgentSession.start(transport);
  return { session, pid: child.pid!, kill: () => child.kill('SIGKILL') };
}
