import { ApiUnavailableError, jobBody, type ApiClient, type JobBody } from './client.ts';
import { EXIT, type ExitCode } from './exit-codes.ts';
import { duration, jobSummary, progressLine } from './format.ts';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal: the progress line is redrawn in place */
  isTTY: boolean;
}

export interface FollowOptions {
  intervalMs: number;
  timeoutMs: number;
  /** stdout is for JSON: the final summary goes to stderr too */
  summaryToStderr?: boolean;
  sleep?: (ms: number) => Promise<void>;
}

/** What a finished job means for a script. */
export function exitFor(job: JobBody): ExitCode {
  if (job.state === 'failed') return EXIT.jobFailed;
  const outcome = job.result?.outcome;
  if (outcome === 'success') return EXIT.ok;
  if (outcome === 'skipped' || outcome === 'superseded') return EXIT.notDeployed;
  return EXIT.jobFailed;
}

/**
 * Polls the job until it ends, with a progress line on stderr: redrawn in place on a
 * terminal, one line per change otherwise (CI logs). A blip of the API is waited out;
 * the deadline is not.
 */
export async function follow(
  client: ApiClient,
  jobId: string,
  io: Io,
  opts: FollowOptions,
): Promise<{ code: ExitCode; job?: JobBody }> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const started = Date.now();
  let last = '';
  let lastError = '';
  const show = (line: string): void => {
    if (io.isTTY) io.err(`\r\x1b[2K${line}`);
    else if (line.replace(/^\[[^\]]*\] /, '') !== last.replace(/^\[[^\]]*\] /, ''))
      io.err(`${line}\n`);
    last = line;
  };
  for (;;) {
    let job: JobBody | undefined;
    try {
      job = await client.call('GET', `/api/v1/jobs/${encodeURIComponent(jobId)}`, jobBody);
      lastError = '';
    } catch (err) {
      if (!(err instanceof ApiUnavailableError)) throw err;
      if (err.message !== lastError)
        io.err(`${io.isTTY ? '\n' : ''}${err.message}; still waiting\n`);
      lastError = err.message;
    }
    if (job) {
      show(progressLine(job, Date.now() - started));
      if (job.state === 'completed' || job.state === 'failed') {
        if (io.isTTY) io.err('\n');
        const code = exitFor(job);
        const summary = `${code === EXIT.ok ? '✓' : '✗'} ${jobSummary(job)}\n`;
        if (opts.summaryToStderr) io.err(summary);
        else io.out(summary);
        return { code, job };
      }
    }
    if (Date.now() - started > opts.timeoutMs) {
      if (io.isTTY) io.err('\n');
      io.err(
        `gave up waiting after ${duration(opts.timeoutMs)}; the job goes on: rollhook job ${jobId} --wait\n`,
      );
      return { code: EXIT.timeout, job };
    }
    await sleep(opts.intervalMs);
  }
}
