import { useActions, useStrata } from '../store/context.js';
import { CliCommand, Duration, JobLogView, JobProgress, JobStateBadge, Time } from './common.js';

function JobLog({ jobId }: { jobId: string }) {
  const job = useStrata((state) => state.jobs[jobId]);
  const lines = useStrata((state) => state.jobLogs[jobId]);
  const actions = useActions();
  if (!job) return null;
  return (
    <aside className="details" data-testid="job-details" data-job-id={job.id}>
      <div className="details-head">
        <h2>{job.title}</h2>
        <button
          type="button"
          className="link"
          onClick={() => void actions.focusJob(null)}
          aria-label="Close job"
        >
          ✕
        </button>
      </div>
      <JobProgress job={job} />
      {job.error && (
        <div className="bad-box" data-testid="job-error">
          <strong>What went wrong: </strong>
          {job.error}
        </div>
      )}
      {job.state === 'running' && (
        <button
          type="button"
          className="danger"
          data-testid="job-cancel"
          onClick={() => void actions.cancelJob(job.id)}
        >
          Cancel
        </button>
      )}
      <CliCommand command={job.cliCommand} testId="job-cli" />
      <h3>Log</h3>
      <JobLogView lines={lines ?? []} testId="job-log" />
    </aside>
  );
}

export function JobsView() {
  const jobs = useStrata((state) => state.jobs);
  const focusedJobId = useStrata((state) => state.focusedJobId);
  const actions = useActions();
  const sorted = Object.values(jobs).sort((a, b) => b.startedAtMs - a.startedAtMs);
  const running = sorted.filter((job) => job.state === 'running').length;
  return (
    <div className="split">
      <div className="split-main">
        <div className="toolbar">
          <span className="muted">
            {running} running, {sorted.length - running} finished. Jobs keep running when you switch
            screens.
          </span>
        </div>
        <div className="table-scroll">
          <table className="grid" data-testid="jobs-table">
            <thead>
              <tr>
                <th>State</th>
                <th>Kind</th>
                <th>Job</th>
                <th>Progress</th>
                <th>Started</th>
                <th className="num">Took</th>
                <th>Problem</th>
              </tr>
            </thead>
            <tbody>
              {sorted.map((job) => (
                <tr
                  key={job.id}
                  data-testid={`job-row-${job.id}`}
                  data-kind={job.kind}
                  data-state={job.state}
                  className={job.id === focusedJobId ? 'clickable focused' : 'clickable'}
                  onClick={() => void actions.focusJob(job.id)}
                >
                  <td>
                    <JobStateBadge job={job} />
                  </td>
                  <td>{job.kind}</td>
                  <td className="wrap">{job.title}</td>
                  <td className="progress-cell">
                    <JobProgress job={job} />
                  </td>
                  <td>
                    <Time unix={Math.floor(job.startedAtMs / 1000)} />
                  </td>
                  <td className="num">
                    <Duration
                      seconds={
                        job.endedAtMs === null ? null : (job.endedAtMs - job.startedAtMs) / 1000
                      }
                    />
                  </td>
                  <td className="bad wrap">{job.error}</td>
                </tr>
              ))}
              {sorted.length === 0 && (
                <tr>
                  <td colSpan={7} className="muted empty">
                    No jobs yet: backups, restores, validations, merges and deletes you start appear
                    here.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      </div>
      {focusedJobId && <JobLog jobId={focusedJobId} />}
    </div>
  );
}
