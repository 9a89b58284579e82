import type { HistoryBody, JobBody, TargetsBody } from './client.ts';

export const short = (sha: string | null | undefined): string => (sha ? sha.slice(0, 8) : '-');

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** `2026-11-29 07:40:12Z (5m ago)`: exact for logs, relative for people. */
export function when(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const exact = new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  return `${exact} (${duration(Math.max(0, now - t))} ago)`;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function statusTable(body: TargetsBody, now = Date.now()): string {
  return table(
    ['TARGET', 'ENVIRONMENT', 'RUNNING', 'REF', 'PIPELINE', 'SINCE', 'BY', 'LAST DEPLOY'],
    body.items.map((t) => [
      t.name,
      t.environment.name,
      short(t.current?.sha),
      t.current?.ref ?? '-',
      t.current ? `#${t.current.pipelineId}` : '-',
      t.current ? when(t.current.since, now) : '-',
      t.current?.by ?? '-',
      t.lastDeploy
        ? `${t.lastDeploy.kind} ${short(t.lastDeploy.sha)} ${t.lastDeploy.outcome}${t.lastDeploy.reason ? `: ${t.lastDeploy.reason}` : ''}`
        : '-',
    ]),
  );
}

/** One target in full: what runs, with its images and digest. */
export function targetDetail(t: TargetsBody['items'][number], now = Date.now()): string {
  const lines = [`${t.name} (${t.environment.name})`];
  if (t.current) {
    lines.push(
      `  running   ${t.current.sha} (${t.current.ref}, pipeline #${t.current.pipelineId})`,
    );
    lines.push(
      `  since     ${when(t.current.since, now)} by ${t.current.by}, job ${t.current.jobId}`,
    );
    if (t.current.digest) lines.push(`  digest    ${t.current.digest}`);
    for (const [c, image] of Object.entries(t.current.images))
      lines.push(`  image     ${c}: ${image}`);
  } else {
    lines.push('  running   nothing deployed by rollhook yet');
  }
  if (t.lastDeploy) {
    const d = t.lastDeploy;
    lines.push(
      `  last      ${d.kind} ${short(d.sha)} ${d.outcome}${d.reason ? ` (${d.reason})` : ''}, ${when(d.finishedAt, now)}, job ${d.jobId}`,
    );
  }
  return lines.join('\n');
}

export function historyTable(body: HistoryBody, now = Date.now()): string {
  const rows = body.items.map((d) => [
    when(d.finishedAt, now),
    d.kind,
    short(d.sha),
    d.ref,
    `#${d.pipelineId}`,
    d.outcome,
    d.by,
    duration(Math.max(0, Date.parse(d.finishedAt) - Date.parse(d.startedAt))),
    d.jobId,
  ]);
  const shown = `${body.offset + 1}-${body.offset + body.items.length} of ${body.total}`;
  return `${table(['FINISHED', 'KIND', 'SHA', 'REF', 'PIPELINE', 'OUTCOME', 'BY', 'TOOK', 'JOB'], rows)}\n(${body.items.length === 0 ? `none of ${body.total}` : shown})`;
}

/** The one-line state of a job, for --wait's progress line. */
export function progressLine(job: JobBody, elapsedMs: number): string {
  const queued = ['waiting', 'delayed', 'prioritized', 'waiting-children'].includes(job.state);
  const parts = [
    `[${duration(elapsedMs)}]`,
    `${job.kind} ${job.target} ${short(job.sha)}:`,
    queued ? 'queued' : job.state,
  ];
  const p = job.progress ?? {};
  if (job.step) parts.push(`· ${job.step}`);
  if (typeof p.message === 'string') parts.push(`· ${p.message}`);
  if (job.attemptsMade > 0 && !['completed', 'failed'].includes(job.state))
    parts.push(
      `(attempt ${job.attemptsMade + 1} of ${job.attempts}${job.error ? `, last error: ${job.error}` : ''})`,
    );
  return parts.join(' ');
}

export function jobSummary(job: JobBody): string {
  const lines = [
    `job ${job.id}: ${job.kind} of ${job.target} ${short(job.sha)}, ${job.state}${job.result ? `, ${job.result.outcome}${job.result.reason ? ` (${job.result.reason})` : ''}` : ''}`,
  ];
  if (job.error) lines.push(`  error: ${job.error}`);
  for (const s of job.steps)
    lines.push(
      `  ${s.status === 'done' ? '✓' : s.status === 'skipped' ? '-' : '✗'} ${s.name.padEnd(14)} ${duration(s.ms).padStart(7)}${s.detail ? `  ${s.detail}` : ''}`,
    );
  if (job.step && job.state === 'active')
    lines.push(
      `  … ${job.step}${typeof job.progress?.message === 'string' ? `: ${job.progress.message}` : ''}`,
    );
  return lines.join('\n');
}
