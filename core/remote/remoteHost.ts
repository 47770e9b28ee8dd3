import type { ClientChannel } from 'ssh2';
import { StrataError, errorText } from '../errors.js';
import { loadAgentBundle, type AgentBundle } from './agentBundle.js';
import type { AgentStats } from './protocol/ops.js';
import { describeTarget, type RemoteTarget } from './remoteOptions.js';
import { AgentSession, type AgentTransport, type SessionTraffic } from './session.js';
import type { HostKeyCheck } from './ssh/knownHosts.js';
import { connectSsh, type SshConnection, type SshHooks } from './ssh/sshConnection.js';

/** The agent's bundle targets Node 20 (scripts/build.mjs `target: 'node20'`). */
const MIN_NODE_MAJOR = 20;
/** The shell's "command not found" status (POSIX: 127). */
const NOT_FOUND_STATUS = 127;
const CLOSE_GRACE_MS = 2000;
const BOOTSTRAP_TIMEOUT_MS = 60_000;

/**
 * Runs on the remote Node.js in front of the agent, in the same process (one exec, one Node start
 * per connection: archive_command connects once per WAL segment). It prints one JSON line per
 * step: the Node version first (so that an old Node still reports it, hence ES5 and CommonJS
 * before the version check); the agent's cache path and the sha256 of the file there; when that
 * differs from the wanted hash (`send`), it reads exactly the agent's size from stdin and renames
 * it into place (atomic: concurrent installs of one version are safe); then `ready`, and it
 * imports the agent, whose protocol frames follow on the same stdout.
 */
const BOOTSTRAP = [
  "var v=process.versions.node,out=function(o){process.stdout.write(JSON.stringify(o)+'\\n')};",
  `if(+v.split('.')[0]<${MIN_NODE_MAJOR}){out({node:v});process.exit(0)}`,
  "var fs=require('fs'),path=require('path'),os=require('os'),crypto=require('crypto'),url=require('url');",
  "var sha=function(b){return crypto.createHash('sha256').update(b).digest('hex')};",
  "var dir=path.join(process.env.XDG_CACHE_HOME||path.join(os.homedir(),'.cache'),'strata');",
  "var file=path.join(dir,'agent-'+process.argv[1]+'.mjs'),want=process.argv[2],size=+process.argv[3],have=null;",
  'try{have=sha(fs.readFileSync(file))}catch(e){}',
  'var start=function(){out({node:v,path:file,ready:true});',
  "import(url.pathToFileURL(file).href).catch(function(e){process.stderr.write(String(e&&e.stack||e)+'\\n');process.exit(1)})};",
  'if(have===want)start();else{out({node:v,path:file,hash:have,send:true});var chunks=[],got=0;',
  'var onData=function(c){chunks.push(c);got+=c.length;if(got<size)return;',
  "process.stdin.off('data',onData);process.stdin.pause();var all=Buffer.concat(chunks),data=all.subarray(0,size);",
  'if(all.length>size)process.stdin.unshift(all.subarray(size));',
  "if(sha(data)!==want){out({error:'received an agent with hash '+sha(data)+', expected '+want});process.exit(1)}",
  "fs.mkdirSync(dir,{recursive:true,mode:448});var tmp=file+'.'+process.pid+'.tmp';",
  "fs.writeFileSync(tmp,data,{mode:384});fs.renameSync(tmp,file);start()};process.stdin.on('data',onData)}",
].join('');

/** POSIX shell single-quoting. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Finds node (`--remote-path`: the directory holding it, or the binary itself; else PATH) and runs
 * the bootstrap, through `sh -c` whatever the remote user's login shell is.
 */
function bootstrapCommand(target: RemoteTarget, version: string, bundle: AgentBundle): string {
  const findNode = target.remotePath
    ? `P=${shellQuote(target.remotePath)}; if [ -d "$P" ]; then NODE="$P/node"; else NODE="$P"; fi`
    : 'NODE=node';
  const script =
    `${findNode}; command -v "$NODE" >/dev/null 2>&1 || { echo "strata: $NODE: not found" >&2; exit ${NOT_FOUND_STATUS}; }; ` +
    `exec "$NODE" -e ${shellQuote(BOOTSTRAP)} ${shellQuote(version)} ${bundle.hash} ${bundle.bytes.length}`;
  return `sh -c ${shellQuote(script)}`;
}

interface BootstrapLine {
  node?: string;
  path?: string;
  hash?: string | null;
  send?: boolean;
  ready?: boolean;
  error?: string;
}

/**
 * Reads the bootstrap's JSON lines until `ready` (sending the agent when asked), then leaves the
 * channel paused at the first byte of the agent's frames. Fails with the reason the agent cannot
 * run: no Node.js, an old one, a failed copy.
 */
async function bootstrapAgent(
  connection: SshConnection,
  channel: ClientChannel,
  bundle: AgentBundle,
): Promise<{ agentPath: string; installed: boolean }> {
  const description = describeTarget(connection.target);
  const lines: BootstrapLine[] = [];
  let stderr = '';
  let exit: { code: number | null; signal: string | undefined } | undefined;
  const onStderr = (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  };
  channel.stderr.on('data', onStderr);
  const ready = await new Promise<boolean>((resolve) => {
    let pending = Buffer.alloc(0);
    const timer = setTimeout(() => finish(false), BOOTSTRAP_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      let newline: number;
      while ((newline = pending.indexOf(0x0a)) >= 0) {
        const text = pending.subarray(0, newline).toString('utf8');
        pending = pending.subarray(newline + 1);
        let line: BootstrapLine;
        try {
          line = JSON.parse(text) as BootstrapLine;
        } catch {
          stderr += `${text}\n`;
          continue;
        }
        lines.push(line);
        if (line.send) channel.write(bundle.bytes);
        if (line.ready) {
          channel.pause();
          channel.off('data', onData);
          if (pending.length > 0) channel.unshift(pending);
          finish(true);
          return;
        }
      }
    };
    const onExit = (code: number | null, signal?: string) => {
      exit = { code, signal };
    };
    const onClose = () => finish(false);
    function finish(value: boolean) {
      clearTimeout(timer);
      channel.off('exit', onExit);
      channel.off('close', onClose);
      resolve(value);
    }
    channel.on('data', onData);
    channel.on('exit', onExit);
    channel.on('close', onClose);
  });
  channel.stderr.off('data', onStderr);
  const status = lines[0];
  const problem =
    stderr.trim() || (exit ? `exit status ${String(exit.code ?? exit.signal)}` : 'no answer');
  if (exit?.code === NOT_FOUND_STATUS || (!status && /not found/.test(stderr))) {
    const where = connection.target.remotePath
      ? `at --remote-path ${connection.target.remotePath}`
      : 'on the PATH of a non-interactive SSH session';
    throw new StrataError(
      'config',
      `Node.js was not found on ${description} (looked for "node" ${where}). Strata's agent needs Node.js ${MIN_NODE_MAJOR} or newer there: ` +
        'install it, or set --remote-path to the directory holding the node binary',
    );
  }
  if (!status?.node)
    throw new StrataError('io', `Cannot start Node.js on ${description}: ${problem}`);
  if (Number(status.node.split('.')[0]) < MIN_NODE_MAJOR) {
    throw new StrataError(
      'config',
      `The remote host ${description} runs Node.js ${status.node}; Strata's agent needs Node.js ${MIN_NODE_MAJOR} or newer. ` +
        'Upgrade it, or set --remote-path to the directory of a newer node binary',
    );
  }
  if (!ready) {
    const failure = lines.find((line) => line.error)?.error ?? problem;
    throw new StrataError(
      'io',
      `Cannot copy the Strata agent to ${description}:${status.path ?? ''}: ${failure}`,
    );
  }
  return { agentPath: status.path!, installed: lines.some((line) => line.send) };
}

function channelTransport(connection: SshConnection, channel: ClientChannel): AgentTransport {
  const description = describeTarget(connection.target);
  const callbacks: Array<(reason: string) => void> = [];
  let ended: string | undefined;
  const end = (reason: string) => {
    if (ended !== undefined) return;
    ended = reason;
    for (const callback of callbacks) callback(reason);
  };
  channel.on('exit', (code: number | null, signal?: string) => {
    end(
      signal
        ? `the agent was killed by signal ${signal}`
        : `the agent exited with status ${String(code)}`,
    );
  });
  channel.on('close', () => end('the SSH channel was closed'));
  connection.onClose((reason) => end(reason));
  return {
    input: channel,
    output: channel,
    stderr: channel.stderr,
    description,
    onExit(callback) {
      if (ended !== undefined) callback(ended);
      else callbacks.push(callback);
    },
    close() {
      channel.end();
    },
  };
}

/** A connected remote host with its agent running. */
export interface RemoteHost {
  readonly target: RemoteTarget;
  /** The host-key check of this connection (the fingerprint a UI shows). */
  readonly hostKey: HostKeyCheck;
  readonly session: AgentSession;
  /** True when this connection copied the agent to the host (it was missing or of another version). */
  readonly agentInstalled: boolean;
  /** Bytes this process sent and received over the connection so far. */
  traffic(): SessionTraffic;
  /** The agent's own counters (bytes read from files there, frames in and out). */
  agentStats(): Promise<AgentStats>;
  /** Ends the agent and the connection. */
  close(): Promise<void>;
}

export interface OpenRemoteHostOptions {
  /** Strata's version: the agent file on the host is `agent-<version>.mjs`, replaced when its hash differs. */
  programVersion: string;
  hooks?: SshHooks;
  /** The agent bundle to copy; defaults to dist/strata-agent.mjs. */
  agentBundlePath?: string;
}

/**
 * Connects to `target`, makes sure the agent of this Strata is there (copying it to
 * `~/.cache/strata/agent-<version>.mjs` when missing or different), starts it with the remote
 * Node.js and checks its protocol version: one exec channel, which then carries the protocol.
 */
export async function openRemoteHost(
  target: RemoteTarget,
  options: OpenRemoteHostOptions,
): Promise<RemoteHost> {
  const bundle = await loadAgentBundle(options.agentBundlePath);
  const connection = await connectSsh(target, options.hooks);
  try {
    const channel = await connection.exec(bootstrapCommand(target, options.programVersion, bundle));
    let channelClosed = false;
    channel.once('close', () => {
      channelClosed = true;
    });
    const bootstrap = await bootstrapAgent(connection, channel, bundle);
    if (bootstrap.installed)
      options.hooks?.log?.(
        `Copied the Strata agent to ${describeTarget(target)}:${bootstrap.agentPath}`,
      );
    const session = await AgentSession.start(channelTransport(connection, channel));
    if (session.hello.agentHash !== bundle.hash) {
      session.close();
      throw new StrataError(
        'io',
        `Version mismatch: the agent started on ${describeTarget(target)} (${bootstrap.agentPath}) is not the one this Strata copied there`,
      );
    }
    let closed: Promise<void> | undefined;
    return {
      target,
      hostKey: connection.hostKey,
      session,
      agentInstalled: bootstrap.installed,
      traffic: () => ({ ...session.traffic }),
      agentStats: () => session.request('stats', {}),
      close() {
        closed ??= new Promise<void>((resolve) => {
          const timer = setTimeout(finish, CLOSE_GRACE_MS);
          function finish() {
            clearTimeout(timer);
            connection.close();
            resolve();
          }
          if (channelClosed) finish();
          else channel.once('close', finish);
          session.close();
        });
        return closed;
      },
    };
  } catch (error) {
    connection.close();
    if (error instanceof StrataError) throw error;
    throw new StrataError(
      'io',
      `Cannot start the Strata agent on ${describeTarget(target)}: ${errorText(error)}`,
      { cause: error },
    );
  }
}
