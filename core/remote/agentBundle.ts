import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { StrataError } from '../errors.js';

/** Defined by scripts/build.mjs in the CLI bundle: the agent bundle's name beside it. */
declare const STRATA_AGENT_BUNDLE: string | undefined;

/**
 * The agent file (dist/strata-agent.mjs): beside the running CLI bundle, or, for unbundled code
 * (tests, the benchmark), in dist/ of the repository two levels above this file.
 */
export function agentBundlePath(): string {
  const url =
    typeof STRATA_AGENT_BUNDLE === 'string'
      ? new URL(STRATA_AGENT_BUNDLE, import.meta.url)
      : new URL('../../dist/strata-agent.mjs', import.meta.url);
  return fileURLToPath(url);
}

export interface AgentBundle {
  path: string;
  bytes: Buffer;
  /** sha256 hex: the agent copied to a host is replaced when its hash differs. */
  hash: string;
}

export async function loadAgentBundle(path = agentBundlePath()): Promise<AgentBundle> {
  const bytes = await readFile(path).catch((error: unknown) => {
    throw new StrataError(
      'internal',
      `Cannot read the Strata agent bundle "${path}" (${(error as Error).message}); it is built by "npm run build" beside dist/strata.mjs`,
    );
  });
  return { path, bytes, hash: createHash('sha256').update(bytes).digest('hex') };
}
