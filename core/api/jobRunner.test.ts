import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import type { StrataEvent } from './contract.js';
import { JobRunner } from './jobRunner.js';

function recorder(runner: JobRunner): StrataEvent[] {
  const events: StrataEvent[] = [];
  runner.subscribe((event) => events.push(event));
  return events;
}

describe('JobRunner', () => {
  it('reports a job as events: running, its log lines, progress parsed from the log, success', async () => {
    let clock = 1_000;
    const runner = new JobRunner({ storage: new LocalStorage(), now: () => (clock += 5) });
    const events = recorder(runner);
    const started = runner.start({
      kind: 'validate',
      title: 'Validate',
      cliCommand: 'strata validate -B /c --instance=i',
      changes: { backupPath: '/c', instance: 'i' },
      async run(ctx) {
        ctx.logger.info('Validating backup TP11RT');
        for (let i = 1; i <= 3; i++)
          ctx.logger.log('LOG', `Progress: (${i}/3). Restore file "base/1/${i}"`);
        ctx.logger.warning('something odd');
      },
    });
    expect(started.state).toBe('running');
    expect(started.cliCommand).toBe('strata validate -B /c --instance=i');
    const ended = await runner.waitFor(started.id);
    expect(ended.state).toBe('succeeded');
    expect(ended.error).toBeNull();
    expect(ended.progress).toEqual({ done: 3, total: 3, unit: 'files' });

    expect(events.map((event) => event.type)).toEqual([
      'job',
      'log',
      'job',
      'job',
      'log',
      'job',
      'catalog-changed',
    ]);
    expect(runner.log(started.id).map((line) => `${line.level}: ${line.message}`)).toEqual([
      'INFO: Validating backup TP11RT',
      'WARNING: something odd',
    ]);
    expect(events.at(-1)).toEqual({ type: 'catalog-changed', backupPath: '/c', instance: 'i' });
    const progressEvents = events.flatMap((event) =>
      event.type === 'job' && event.job.progress ? [event.job.progress.done] : [],
    );
    // 1/3 goes out, 2/3 comes within the throttle interval and is folded, 3/3 always goes out.
    expect(progressEvents).toEqual([1, 3, 3]);
  });

  it('fails a job with the error in plain words and logs it as ERROR', async () => {
    const runner = new JobRunner({ storage: new LocalStorage() });
    const job = runner.start({
      kind: 'merge',
      title: 'Merge',
      cliCommand: 'strata merge',
      async run() {
        throw new StrataError('backup-not-found', 'Backup QWERTY is not found');
      },
    });
    const ended = await runner.waitFor(job.id);
    expect(ended).toMatchObject({ state: 'failed', error: 'Backup QWERTY is not found' });
    expect(ended.endedAtMs).not.toBeNull();
    expect(runner.log(job.id).at(-1)).toMatchObject({
      level: 'ERROR',
      message: 'Backup QWERTY is not found',
    });
  });

  it('cancels through the context signal and marks the job cancelled', async () => {
    const runner = new JobRunner({ storage: new LocalStorage() });
    let sawAbort = false;
    const job = runner.start({
      kind: 'restore',
      title: 'Restore',
      cliCommand: 'strata restore',
      run: (ctx) =>
        new Promise<void>((_resolve, reject) => {
          ctx.signal!.addEventListener('abort', () => {
            sawAbort = true;
            reject(new StrataError('interrupted', 'Interrupted during data file restore'));
          });
        }),
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    runner.cancel(job.id);
    const ended = await runner.waitFor(job.id);
    expect(sawAbort).toBe(true);
    expect(ended.state).toBe('cancelled');
    expect(runner.log(job.id).map((line) => line.message)).toEqual([
      'Cancel requested, stopping the job',
      'Interrupted during data file restore',
    ]);
  });

  it('lists jobs newest first, forgets the oldest finished ones, and refuses unknown IDs', async () => {
    const runner = new JobRunner({ storage: new LocalStorage(), keepFinishedJobs: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = runner.start({
        kind: 'pin',
        title: `pin ${i}`,
        cliCommand: 'strata set-backup',
        run: async () => undefined,
      });
      ids.push(job.id);
      await runner.waitFor(job.id);
    }
    expect(runner.list().map((job) => job.title)).toEqual(['pin 2', 'pin 1']);
    expect(() => runner.log(ids[0]!)).toThrow(`Job ${ids[0]} does not exist`);
  });

  it('keeps delivering events when a listener throws', async () => {
    const runner = new JobRunner({ storage: new LocalStorage() });
    runner.subscribe(() => {
      throw new Error('window destroyed');
    });
    const events = recorder(runner);
    const job = runner.start({
      kind: 'pin',
      title: 'pin',
      cliCommand: 'strata set-backup',
      run: async () => undefined,
    });
    await runner.waitFor(job.id);
    expect(events.map((event) => (event.type === 'job' ? event.job.state : event.type))).toEqual([
      'running',
      'succeeded',
    ]);
  });
});
