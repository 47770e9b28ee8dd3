import { useState } from 'react';
import type { ReactNode } from 'react';
import type { BackupStatus, JobInfo, JobLogLine } from '../../../core/api/contract.js';
import { exactBytes, formatBytes, formatDuration, formatTime } from '../format.js';

/** A status word in its colour (styles.css `.status-*`), as pg_probackup spells it. */
export function StatusBadge({ status }: { status: BackupStatus }) {
  return <span className={`status status-${status.toLowerCase()}`}>{status}</span>;
}

/** A size in human units; the exact byte count on hover. */
export function Bytes({ value }: { value: number | null }) {
  return (
    <span className="num" title={exactBytes(value)}>
      {formatBytes(value)}
    </span>
  );
}

export function Duration({ seconds }: { seconds: number | null }) {
  return (
    <span className="num" title={seconds === null ? 'unknown' : `${seconds} s`}>
      {formatDuration(seconds)}
    </span>
  );
}

/** A time in UTC; hover shows the local time and the Unix seconds it came from. */
export function Time({ unix }: { unix: number | null }) {
  if (unix === null) return <span className="muted">—</span>;
  const local = new Date(unix * 1000).toString();
  return (
    <span className="num" title={`${local}\nUnix time ${unix}`}>
      {formatTime(unix)}
    </span>
  );
}

/** An LSN in monospace; long ones are shortened only by the table's column width, never by code. */
export function Lsn({ value }: { value: string }) {
  return (
    <span className="mono" title={`LSN ${value}`}>
      {value}
    </span>
  );
}

/** The command line that does the same as the action next to it, with a copy button. */
export function CliCommand({
  command,
  testId = 'cli-command',
}: {
  command: string;
  testId?: string;
}) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="cli">
      <div className="cli-head">
        <span>Equivalent command</span>
        <button
          type="button"
          className="link"
          onClick={() => {
            void navigator.clipboard?.writeText(command).then(() => setCopied(true));
          }}
        >
          {copied ? 'copied' : 'copy'}
        </button>
      </div>
      <pre data-testid={testId}>{command}</pre>
    </div>
  );
}

export function Modal({
  title,
  onClose,
  children,
  testId,
  wide = false,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  testId: string;
  wide?: boolean;
}) {
  return (
    <div
      className="modal-backdrop"
      onMouseDown={(event) => event.target === event.currentTarget && onClose()}
    >
      <div
        className={wide ? 'modal wide' : 'modal'}
        role="dialog"
        aria-label={title}
        data-testid={testId}
      >
        <div className="modal-head">
          <h2>{title}</h2>
          <button type="button" className="link" onClick={onClose} aria-label="Close">
            ✕
          </button>
        </div>
        {children}
      </div>
    </div>
  );
}

/** A job's progress as a bar and the numbers behind it; an indeterminate bar until totals are known. */
export function JobProgress({ job }: { job: JobInfo }) {
  const progress = job.progress;
  const fraction =
    progress && progress.total > 0 ? Math.min(1, progress.done / progress.total) : null;
  const label =
    progress && progress.total > 0
      ? progress.unit === 'bytes'
        ? `${formatBytes(progress.done)} of ${formatBytes(progress.total)}`
        : `${progress.done} of ${progress.total} ${progress.unit}`
      : job.state;
  return (
    <div className={`progress progress-${job.state}`} data-testid="job-progress">
      {job.state === 'running' && fraction === null ? (
        <progress />
      ) : (
        <progress max={1} value={job.state === 'succeeded' ? 1 : (fraction ?? 0)} />
      )}
      <span className="progress-label">
        {label}
        {fraction !== null && job.state === 'running' ? ` (${Math.round(fraction * 100)}%)` : ''}
      </span>
    </div>
  );
}

/** LOG and VERBOSE lines are per-file detail; a DBA reads INFO and above first. */
const DETAIL_LEVELS: ReadonlySet<JobLogLine['level']> = new Set(['LOG', 'VERBOSE']);

/**
 * A job's log, newest line last and kept in view. Per-file detail (LOG, VERBOSE) is hidden until
 * asked for; `tail` limits the lines shown where space is short.
 */
export function JobLogView({
  lines,
  tail,
  testId,
}: {
  lines: JobLogLine[];
  tail?: number;
  testId: string;
}) {
  const [detail, setDetail] = useState(false);
  const shown = (detail ? lines : lines.filter((line) => !DETAIL_LEVELS.has(line.level))).slice(
    tail ? -tail : 0,
  );
  return (
    <div className="job-log">
      <label className="check muted">
        <input
          type="checkbox"
          checked={detail}
          onChange={(event) => setDetail(event.target.checked)}
        />{' '}
        per-file detail (LOG)
      </label>
      <pre
        className={tail ? 'log' : 'log tall'}
        data-testid={testId}
        ref={(element) => {
          if (element) element.scrollTop = element.scrollHeight;
        }}
      >
        {shown.map((line, i) => (
          <span key={i} className={`log-${line.level.toLowerCase()}`}>
            {new Date(line.timeMs).toISOString().slice(11, 19)} {line.level}: {line.message}
            {'\n'}
          </span>
        ))}
      </pre>
    </div>
  );
}

export function JobStateBadge({ job }: { job: JobInfo }) {
  return <span className={`job-state job-${job.state}`}>{job.state}</span>;
}
