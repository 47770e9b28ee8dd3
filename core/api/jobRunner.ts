import { StrataError, errorText, isStrataError } from '../errors.js';
import { createLogger } from '../log.js';
import type { LogRecord } from '../log.js';
import type { CommandContext } from '../commands/context.js';
import type { Storage } from '../storage/storage.js';
import type { JobInfo, JobKind, JobLogLine, StrataEvent } from './contract.js';

/**
 * Long work is a job with events, never an awaited promise the UI sits on (STYLE.md). The runner
 * starts a command with a job-scoped CommandContext: its Logger turns each record into a `log`
 * event and the commands' `Progress: (n/total)` lines into `job` progress events; its AbortSignal
 * is how `cancelJob` stops the command (commands check `ctx.signal` between files).
 *
 * Where it runs: the runner lives wherever the API lives. `strata ui` runs the API in its own
 * process, which is not a UI process; the Electron app runs the whole API, this runner included,
 * in a utilityProcess and relays calls and events through `apiRelay.ts`, so no job ever runs on
 * Electron's main thread. Everything a job reports is plain JSON for that reason.
 */

export interface JobControl {
  /** Progress the job measures itself (the demo counts its steps); command progress is parsed from the log. */
  setProgress(done: number, total: number, unit: string): void;
}

export interface JobDefinition {
  kind: JobKind;
  title: string;
  cliCommand: string;
  /** The instance whose catalog the job changes: a `catalog-changed` event follows its end. */
  changes?: { backupPath: string; instance: string };
  /** Where the job's files are, when not the runner's Storage (a remote catalog or destination). */
  storage?: Storage;
  run(ctx: CommandContext, control: JobControl): Promise<void>;
}

export interface JobRunnerOptions {
  storage: Storage;
  /** Unix milliseconds (tests fix it). */
  now?: () => number;
  /** Finished jobs kept for listJobs and getJobLog; the oldest beyond this are forgotten. */
  keepFinishedJobs?: number;
  /** Log lines kept per job; beyond this the oldest are dropped. */
  maxLogLinesPerJob?: number;
}

interface Job {
  info: JobInfo;
  controller: AbortController;
  lines: JobLogLine[];
  done: Promise<void>;
  lastProgressEventMs: number;
}

/** `Progress: (12/345). Restore file "…"`: what backup, restore, merge, delete and checkdb log per file. */
const PROGRESS_LINE = /^Progress: \((\d+)\/(\d+)\)/;
/** Progress events are throttled to this interval; the final count always goes out. */
const PROGRESS_EVENT_INTERVAL_MS = 100;

export class JobRunner {
  private readonly jobs = new Map<string, Job>();
  private readonly listeners = new Set<(event: StrataEvent) => void>();
  private readonly now: () => number;
  private readonly keepFinishedJobs: number;
  private readonly maxLogLines: number;
  private sequence = 0;

  constructor(private readonly options: JobRunnerOptions) {
    this.now = options.now ?? Date.now;
    this.keepFinishedJobs = options.keepFinishedJobs ?? 100;
    this.maxLogLines = options.maxLogLinesPerJob ?? 20_000;
  }

  subscribe(listener: (event: StrataEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  publish(event: StrataEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // A listener that throws (a closed socket, a destroyed window) must not stop the others.
      }
    }
  }

  start(definition: JobDefinition): JobInfo {
    const id = `${this.now().toString(36)}-${(++this.sequence).toString(36)}`;
    const info: JobInfo = {
      id,
      kind: definition.kind,
      title: definition.title,
      state: 'running',
      startedAtMs: this.now(),
      endedAtMs: null,
      progress: null,
      error: null,
      cliCommand: definition.cliCommand,
    };
    const job: Job = {
      info,
      controller: new AbortController(),
      lines: [],
      done: Promise.resolve(),
      lastProgressEventMs: 0,
    };
    this.jobs.set(id, job);
    this.publishJob(job);
    const ctx: CommandContext = {
      storage: definition.storage ?? this.options.storage,
      logger: createLogger((record) => this.record(job, record)),
      now: this.now,
      signal: job.controller.signal,
    };
    const control: JobControl = {
      setProgress: (done, total, unit) => this.setProgress(job, { done, total, unit }, true),
    };
    // Started on the next turn, so the caller gets (and can publish) the job before its first event.
    job.done = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => {
        if (job.controller.signal.aborted)
          throw new StrataError('interrupted', 'The job was cancelled before it started');
        return definition.run(ctx, control);
      })
      .then(
        () => this.finish(job, 'succeeded', null),
        (error: unknown) => {
          const message = isStrataError(error) ? error.message : errorText(error);
          this.record(job, { level: 'ERROR', message, timeMs: this.now() });
          this.finish(job, job.controller.signal.aborted ? 'cancelled' : 'failed', message);
        },
      )
      .then(() => {
        if (definition.changes) this.publish({ type: 'catalog-changed', ...definition.changes });
      });
    return { ...info };
  }

  cancel(jobId: string): void {
    const job = this.requireJob(jobId);
    if (job.info.state !== 'running' || job.controller.signal.aborted) return;
    this.record(job, {
      level: 'WARNING',
      message: 'Cancel requested, stopping the job',
      timeMs: this.now(),
    });
    job.controller.abort();
  }

  list(): JobInfo[] {
    return [...this.jobs.values()].map((job) => ({ ...job.info })).reverse();
  }

  log(jobId: string): JobLogLine[] {
    return [...this.requireJob(jobId).lines];
  }

  /** The job as it ended (tests, and `strata ui --demo` waiting for its demo). */
  async waitFor(jobId: string): Promise<JobInfo> {
    const job = this.requireJob(jobId);
    await job.done;
    return { ...job.info };
  }

  private requireJob(jobId: string): Job {
    const job = this.jobs.get(jobId);
    if (!job)
      throw new StrataError(
        'usage',
        `Job ${jobId} does not exist (jobs are kept until Strata exits)`,
      );
    return job;
  }

  private record(job: Job, record: LogRecord): void {
    const progress = PROGRESS_LINE.exec(record.message);
    if (progress) {
      this.setProgress(
        job,
        { done: Number(progress[1]), total: Number(progress[2]), unit: 'files' },
        false,
      );
      return;
    }
    const line: JobLogLine = {
      jobId: job.info.id,
      level: record.level,
      message: record.message,
      timeMs: record.timeMs,
    };
    job.lines.push(line);
    if (job.lines.length > this.maxLogLines)
      job.lines.splice(0, job.lines.length - this.maxLogLines);
    this.publish({ type: 'log', line });
  }

  private setProgress(job: Job, progress: NonNullable<JobInfo['progress']>, always: boolean): void {
    job.info.progress = progress;
    const nowMs = this.now();
    if (
      !always &&
      progress.done < progress.total &&
      nowMs - job.lastProgressEventMs < PROGRESS_EVENT_INTERVAL_MS
    )
      return;
    job.lastProgressEventMs = nowMs;
    this.publishJob(job);
  }

  private finish(job: Job, state: JobInfo['state'], error: string | null): void {
    // Commands report the files they start; a finished job has done them all (backup copies
    // pg_control last without a progress line).
    if (state === 'succeeded' && job.info.progress)
      job.info.progress = { ...job.info.progress, done: job.info.progress.total };
    job.info.state = state;
    job.info.endedAtMs = this.now();
    job.info.error = error;
    this.publishJob(job);
    this.forgetOldJobs();
  }

  private publishJob(job: Job): void {
    this.publish({
      type: 'job',
      job: { ...job.info, progress: job.info.progress && { ...job.info.progress } },
    });
  }

  private forgetOldJobs(): void {
    const finished = [...this.jobs.values()].filter((job) => job.info.state !== 'running');
    for (const job of finished.slice(0, Math.max(0, finished.length - this.keepFinishedJobs))) {
      this.jobs.delete(job.info.id);
    }
  }
}
