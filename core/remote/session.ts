import type { Readable, Writable } from 'node:stream';
import { StrataError, errorText, type StrataErrorCode } from '../errors.js';
import {
  AGENT_MAGIC,
  AGENT_PROTOCOL_VERSION,
  FrameDecoder,
  FrameKind,
  encodeFrame,
  type Frame,
} from './protocol/frames.js';
import type {
  AgentArgs,
  AgentErrorPayload,
  AgentHello,
  AgentOp,
  AgentResult,
} from './protocol/ops.js';
import { decodeValue, encodeValue, type WireValue } from './protocol/values.js';

/** The byte streams of a running agent: an SSH exec channel, or a child process in tests. */
export interface AgentTransport {
  /** The agent's stdout. */
  readonly input: Readable;
  /** The agent's stdin. */
  readonly output: Writable;
  /** The agent's stderr, kept for the message when it fails. */
  readonly stderr?: Readable;
  /** Where the agent runs, for messages: `user@host:port`. */
  readonly description: string;
  /** Registers the callback for the agent's exit (code or signal) or the connection's loss. */
  onExit(callback: (reason: string) => void): void;
  /** Ends the transport (the agent sees end of input and exits). */
  close(): void;
}

interface Pending {
  op: AgentOp;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onData: ((chunk: Buffer) => void) | undefined;
}

/** Bytes this client moved over the connection. */
export interface SessionTraffic {
  bytesSent: number;
  bytesReceived: number;
}

const HELLO_TIMEOUT_MS = 30_000;
const STDERR_KEPT_BYTES = 4096;

function rebuildError(payload: AgentErrorPayload, description: string): Error {
  if (payload.strataCode) {
    return new StrataError(payload.strataCode as StrataErrorCode, payload.message);
  }
  const error = new Error(`${payload.message} (on ${description})`);
  if (payload.errno) Object.assign(error, { code: payload.errno });
  return error;
}

/**
 * A client of one running agent: numbered requests multiplexed over its one channel, answered in
 * any order, so `-j N` workers share one SSH connection. When the agent or the connection goes
 * away, every pending and later request fails with one clear StrataError naming the host.
 */
export class AgentSession {
  readonly traffic: SessionTraffic = { bytesSent: 0, bytesReceived: 0 };
  private readonly pending = new Map<number, Pending>();
  private readonly decoder = new FrameDecoder();
  private nextRequestId = 1;
  private failure: StrataError | undefined;
  private closing = false;
  private stderrTail = '';
  private drained: Promise<void> | undefined;
  private helloValue: AgentHello | undefined;
  /** Settles the wait for HELLO; undefined once it has arrived. */
  private helloWaiter: ((error: Error | undefined) => void) | undefined;

  private constructor(private readonly transport: AgentTransport) {}

  get description(): string {
    return this.transport.description;
  }

  /** The agent's HELLO: its protocol, hash, Node.js version, pid and codecs. */
  get hello(): AgentHello {
    return this.helloValue!;
  }

  /** Waits for the agent's HELLO on `transport` and checks that it speaks this protocol. */
  static async start(
    transport: AgentTransport,
    options: { helloTimeoutMs?: number } = {},
  ): Promise<AgentSession> {
    const session = new AgentSession(transport);
    const timeoutMs = options.helloTimeoutMs ?? HELLO_TIMEOUT_MS;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          session.helloWaiter?.(
            new StrataError(
              'io',
              `The Strata agent on ${transport.description} did not answer within ${timeoutMs / 1000} s${stderrNote(session.stderrTail)}`,
            ),
          );
        }, timeoutMs);
        session.helloWaiter = (error) => {
          clearTimeout(timer);
          session.helloWaiter = undefined;
          if (error) reject(error);
          else resolve();
        };
        session.listen();
      });
    } catch (error) {
      session.failure ??= error as StrataError;
      transport.close();
      throw error;
    }
    const hello = session.hello;
    if (hello.magic !== AGENT_MAGIC || hello.protocol !== AGENT_PROTOCOL_VERSION) {
      session.close();
      throw new StrataError(
        'io',
        `Version mismatch: the agent on ${transport.description} speaks protocol ${String(hello.protocol)}, this Strata speaks ${AGENT_PROTOCOL_VERSION}`,
      );
    }
    return session;
  }

  private listen(): void {
    const { transport } = this;
    transport.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_KEPT_BYTES);
    });
    transport.input.on('data', (chunk: Buffer) => {
      this.traffic.bytesReceived += chunk.length;
      let frames: Frame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (error) {
        const reason = this.helloValue
          ? `the agent sent an invalid frame: ${errorText(error)}`
          : `the remote command is not the Strata agent: it wrote ${JSON.stringify(chunk.subarray(0, 80).toString('utf8'))}`;
        this.fail(reason);
        transport.close();
        return;
      }
      for (const frame of frames) this.receive(frame);
    });
    // The bootstrap in front of the agent leaves its channel paused at the first frame.
    transport.input.resume();
    transport.output.on('error', (error: Error) => this.fail(errorText(error)));
    transport.onExit((reason) => this.fail(reason));
  }

  private receive(frame: Frame): void {
    if (this.helloValue) {
      this.dispatch(frame);
      return;
    }
    if (frame.kind !== FrameKind.Hello) {
      this.helloWaiter?.(
        new StrataError(
          'io',
          `The Strata agent on ${this.description} sent frame kind ${frame.kind} before HELLO`,
        ),
      );
      return;
    }
    try {
      this.helloValue = decodeValue(frame.payload) as unknown as AgentHello;
      this.helloWaiter?.(undefined);
    } catch (error) {
      this.helloWaiter?.(
        new StrataError(
          'io',
          `Cannot read the HELLO of the Strata agent on ${this.description}: ${errorText(error)}`,
        ),
      );
    }
  }

  private dispatch(frame: Frame): void {
    const pending = this.pending.get(frame.requestId);
    if (!pending) return;
    if (frame.kind === FrameKind.Data) {
      pending.onData?.(frame.payload);
      return;
    }
    this.pending.delete(frame.requestId);
    try {
      const value = decodeValue(frame.payload);
      if (frame.kind === FrameKind.Result) pending.resolve(value);
      else pending.reject(rebuildError(value as unknown as AgentErrorPayload, this.description));
    } catch (error) {
      pending.reject(
        new StrataError(
          'io',
          `Cannot read the answer of the Strata agent on ${this.description} to "${pending.op}": ${errorText(error)}`,
        ),
      );
    }
  }

  /** Fails every pending and later request (and the wait for HELLO) with the reason the session ended. */
  private fail(reason: string): void {
    if (this.failure) return;
    if (!this.helloValue) {
      this.failure = new StrataError(
        'io',
        `The Strata agent on ${this.description} ended before it started: ${reason}${stderrNote(this.stderrTail)}`,
      );
      this.helloWaiter?.(this.failure);
      return;
    }
    const message = this.closing
      ? `The connection to the Strata agent on ${this.description} is closed`
      : `Lost the connection to the Strata agent on ${this.description}: ${reason}${stderrNote(this.stderrTail)}. ` +
        'Nothing was completed after this point; run the command again once the host is reachable';
    this.failure = new StrataError('io', message);
    for (const pending of this.pending.values()) pending.reject(this.failure);
    this.pending.clear();
  }

  /** The error that ended the session, if it has ended. */
  get failed(): StrataError | undefined {
    return this.failure;
  }

  /**
   * Sends one request. `sent` settles when the frame is handed to the channel within its buffer
   * limit (callers that pipeline writes wait on it for back-pressure); `result` with the answer.
   */
  send<K extends AgentOp>(
    op: K,
    args: AgentArgs<K>,
    onData?: (chunk: Buffer) => void,
  ): { sent: Promise<void>; result: Promise<AgentResult<K>> } {
    if (this.failure) {
      const failure = this.failure;
      return { sent: Promise.resolve(), result: Promise.reject(failure) };
    }
    const requestId = this.nextRequestId;
    this.nextRequestId = this.nextRequestId >= 0xfffffffe ? 1 : this.nextRequestId + 1;
    const result = new Promise<AgentResult<K>>((resolve, reject) => {
      this.pending.set(requestId, {
        op,
        resolve: resolve as (value: unknown) => void,
        reject,
        onData,
      });
    });
    const frame = encodeFrame(
      FrameKind.Request,
      requestId,
      encodeValue({ op, args } as unknown as WireValue),
    );
    this.traffic.bytesSent += frame.length;
    const sent = this.write(frame);
    return { sent, result };
  }

  request<K extends AgentOp>(
    op: K,
    args: AgentArgs<K>,
    onData?: (chunk: Buffer) => void,
  ): Promise<AgentResult<K>> {
    return this.send(op, args, onData).result;
  }

  private write(frame: Buffer): Promise<void> {
    const { output } = this.transport;
    if (output.writableEnded || output.destroyed) return Promise.resolve();
    if (output.write(frame)) return this.drained ?? Promise.resolve();
    this.drained ??= new Promise<void>((resolve) => {
      const done = () => {
        output.off('drain', done);
        output.off('close', done);
        this.drained = undefined;
        resolve();
      };
      output.on('drain', done);
      output.on('close', done);
    });
    return this.drained;
  }

  /** Ends the session: the agent sees the end of its input, finishes what runs, and exits. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.fail('closed');
    this.transport.close();
  }
}

function stderrNote(stderr: string): string {
  const text = stderr.trim();
  return text ? ` (agent stderr: ${text.split('\n').slice(-3).join(' | ')})` : '';
}
