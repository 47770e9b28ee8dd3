import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** Debian's OpenSSH server (package openssh-server). */
export const SSHD_PATH = '/usr/sbin/sshd';

export interface TestSshdOptions {
  /** Also create `encryptedClientKeyPath`, a second authorized key protected by this passphrase. */
  clientKeyPassphrase?: string;
}

/** Every server started by this process, stopped on exit even when a test fails. */
const liveServers = new Set<TestSshd>();
process.on('exit', () => {
  for (const server of liveServers) server.stopSync();
});

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

function keygen(path: string, passphrase = ''): void {
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    passphrase,
    '-C',
    'strata-test',
    '-f',
    path,
  ]);
}

/** Parent pid of a process, from /proc/<pid>/stat (field 4, after the parenthesised command name). */
function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/**
 * A real OpenSSH server for tests: `sshd -D -e` on 127.0.0.1 and a free port, running as the
 * current (unprivileged) user with a generated ed25519 host key and an authorized client key,
 * all in its own temporary directory. Sessions get XDG_CACHE_HOME inside that directory, so the
 * Strata agent a test copies there never touches the user's real cache.
 */
export class TestSshd {
  readonly host = '127.0.0.1';
  port = 0;
  private process: ChildProcess | undefined;
  private log = '';

  private constructor(
    readonly dir: string,
    readonly options: TestSshdOptions,
  ) {}

  get configPath(): string {
    return join(this.dir, 'sshd_config');
  }
  get hostKeyPath(): string {
    return join(this.dir, 'ssh_host_ed25519_key');
  }
  get clientKeyPath(): string {
    return join(this.dir, 'client_ed25519');
  }
  get encryptedClientKeyPath(): string {
    return join(this.dir, 'client_encrypted_ed25519');
  }
  /** A known_hosts file that holds this server's current host key. */
  get knownHostsPath(): string {
    return join(this.dir, 'known_hosts');
  }
  /** Where sessions keep their cache (the agent goes to `<cacheDir>/strata/`). */
  get cacheDir(): string {
    return join(this.dir, 'cache');
  }
  get user(): string {
    return userInfo().username;
  }
  /** The agent's installed files. */
  agentFiles(): string[] {
    const dir = join(this.cacheDir, 'strata');
    return existsSync(dir) ? readdirSync(dir).map((name) => join(dir, name)) : [];
  }

  /** `--ssh-options` that authenticate with the client key and trust exactly the known_hosts file. */
  sshOptions(knownHostsPath = this.knownHostsPath, extra = ''): string {
    return `-i ${this.clientKeyPath} -o IdentitiesOnly=yes -o UserKnownHostsFile=${knownHostsPath} -o GlobalKnownHostsFile=none ${extra}`.trim();
  }

  /** The `--remote-*` options of a command reaching this server. */
  remoteArgs(knownHostsPath = this.knownHostsPath, extra = ''): string[] {
    return [
      '--remote-host',
      this.host,
      '--remote-port',
      String(this.port),
      '--remote-user',
      this.user,
      `--ssh-options=${this.sshOptions(knownHostsPath, extra)}`,
    ];
  }

  static async start(options: TestSshdOptions = {}): Promise<TestSshd> {
    if (!existsSync(SSHD_PATH))
      throw new Error(`${SSHD_PATH} is missing: install Debian's openssh-server`);
    const server = new TestSshd(mkdtempSync(join(tmpdir(), 'strata-sshd-')), options);
    keygen(server.hostKeyPath);
    keygen(server.clientKeyPath);
    const authorized = [readFileSync(`${server.clientKeyPath}.pub`, 'utf8')];
    if (options.clientKeyPassphrase !== undefined) {
      keygen(server.encryptedClientKeyPath, options.clientKeyPassphrase);
      authorized.push(readFileSync(`${server.encryptedClientKeyPath}.pub`, 'utf8'));
    }
    writeFileSync(join(server.dir, 'authorized_keys'), authorized.join(''));
    server.port = await freePort();
    await server.launch();
    return server;
  }

  private writeKnownHosts(): void {
    const [keyType, keyBase64] = readFileSync(`${this.hostKeyPath}.pub`, 'utf8')
      .trim()
      .split(/\s+/);
    writeFileSync(this.knownHostsPath, `[${this.host}]:${this.port} ${keyType} ${keyBase64}\n`);
  }

  private async launch(): Promise<void> {
    writeFileSync(
      this.configPath,
      [
        `Port ${this.port}`,
        `ListenAddress ${this.host}`,
        `HostKey ${this.hostKeyPath}`,
        `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
        `PidFile ${join(this.dir, 'sshd.pid')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        `SetEnv XDG_CACHE_HOME=${this.cacheDir}`,
        '',
      ].join('\n'),
    );
    this.writeKnownHosts();
    this.log = '';
    const child = spawn(SSHD_PATH, ['-D', '-e', '-f', this.configPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.process = child;
    liveServers.add(this);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`sshd did not start within 10 s:\n${this.log}`)),
        10_000,
      );
      child.stderr!.on('data', (chunk: Buffer) => {
        this.log += chunk.toString('utf8');
        if (this.log.includes('Server listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`sshd exited with status ${String(code)}:\n${this.log}`));
      });
    });
  }

  /** sshd's log (-e sends it to stderr). */
  serverLog(): string {
    return this.log;
  }

  /** One process per open connection: the listener's children (sshd's monitor of each session). */
  connectionPids(): number[] {
    const listener = this.process?.pid;
    if (listener === undefined) return [];
    return allPids().filter((pid) => parentPid(pid) === listener);
  }

  /** Every process under the listener: monitors, the network-facing session processes, commands. */
  private descendants(): number[] {
    const listener = this.process?.pid;
    if (listener === undefined) return [];
    const pids = allPids();
    const found = new Set<number>([listener]);
    for (let grew = true; grew;) {
      grew = false;
      for (const pid of pids) {
        const parent = parentPid(pid);
        if (!found.has(pid) && parent !== undefined && found.has(parent)) {
          found.add(pid);
          grew = true;
        }
      }
    }
    found.delete(listener);
    return [...found];
  }

  /** Processes running under this server's connections whose command name (`comm`) is `name`. */
  sessionProcesses(name: string): number[] {
    return this.descendants().filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name;
      } catch {
        return false;
      }
    });
  }

  /**
   * Drops every open connection as a network failure would: SIGKILL to the sshd processes of each
   * session (the monitor and the process that holds the socket), leaving the commands they ran.
   * Answers the number of connections dropped.
   */
  killConnections(): number {
    const connections = this.connectionPids().length;
    for (const pid of this.sessionProcesses('sshd')) process.kill(pid, 'SIGKILL');
    return connections;
  }

  /** SIGKILL to the Strata agents (the Node.js processes) running under this server. */
  killAgents(): number {
    const pids = this.sessionProcesses('node');
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    return pids.length;
  }

  /**
   * Replaces the host key (as a reinstalled host would have) and restarts the server on the same
   * port; `knownHostsPath` then holds the new key, so keep a copy of the old file first.
   */
  async rotateHostKey(): Promise<void> {
    await this.stop(false);
    rmSync(this.hostKeyPath, { force: true });
    rmSync(`${this.hostKeyPath}.pub`, { force: true });
    keygen(this.hostKeyPath);
    await this.launch();
  }

  async stop(remove = true): Promise<void> {
    const child = this.process;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      this.killConnections();
      child.kill('SIGTERM');
      await exited;
    }
    this.process = undefined;
    liveServers.delete(this);
    if (remove) rmSync(this.dir, { recursive: true, force: true });
  }

  stopSync(): void {
    try {
      this.killConnections();
      this.process?.kill('SIGKILL');
    } catch {
      // Already gone.
    }
    this.process = undefined;
  }
}
