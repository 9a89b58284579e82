import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { duration as durationSchema } from '../config/schema.ts';
import {
  acceptedBody,
  ApiClient,
  ApiRefusedError,
  historyBody,
  jobBody,
  targetsBody,
} from './client.ts';
import { EXIT, exitCodeFor, type ExitCode } from './exit-codes.ts';
import { follow, type Io } from './follow.ts';
import { historyTable, jobSummary, short, statusTable, targetDetail } from './format.ts';

export const CLI_VERSION = '0.1.0';
export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface CliEnv {
  env: NodeJS.ProcessEnv;
  io: Io;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

const EXIT_HELP = `
Environment:
  ROLLHOOK_URL     the rollhook API (default ${DEFAULT_URL})
  ROLLHOOK_TOKEN   an API token (required; never given as an argument)

Exit codes:
  0 done   1 job failed or rolled back   2 usage   3 auth (401/403)   4 not found
  5 refused (409/422)   6 rollhook unavailable   7 --wait timed out
  8 job ended without deploying (skipped, superseded)`;

function ms(value: string): number {
  const r = durationSchema.safeParse(/^\d+$/.test(value) ? Number(value) : value);
  if (!r.success) throw new InvalidArgumentError('a duration like 500ms, 30s, 10m or 1h');
  return r.data;
}

function count(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('a whole number');
  return Number(value);
}

interface WaitOpts {
  wait?: boolean;
  timeout: number;
  interval: number;
}

const waitOptions = (cmd: Command): Command =>
  cmd
    .option(
      '-w, --wait',
      'follow the job to its end with a progress line; the exit code says how it ended',
    )
    .addOption(
      new Option('--timeout <duration>', 'give up waiting after this long')
        .argParser(ms)
        .default(30 * 60_000, '30m'),
    )
    .addOption(
      new Option('--interval <duration>', 'poll this often').argParser(ms).default(1000, '1s'),
    );

/** Runs the CLI; resolves to the exit code (never calls process.exit, for tests). */
export async function runCli(argv: string[], ctx: CliEnv): Promise<number> {
  const { io } = ctx;
  let code: ExitCode = EXIT.ok;
  const program = new Command()
    .name('rollhook')
    .description('Redeploy, roll back and watch rollhook deploys through its REST API.')
    .version(CLI_VERSION)
    .option('--url <url>', 'the rollhook API (default: $ROLLHOOK_URL, else http://127.0.0.1:8080)')
    .option('--json', 'print the API answer as JSON on stdout (progress still goes to stderr)')
    .addHelpText('after', EXIT_HELP)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  const client = (): ApiClient => {
    const token = ctx.env.ROLLHOOK_TOKEN;
    if (!token)
      throw new CommanderError(
        EXIT.usage,
        'rollhook.token',
        'error: ROLLHOOK_TOKEN is not set: export an API token (see the README)\n',
      );
    const { url } = program.opts<{ url?: string }>();
    return new ApiClient({
      baseUrl: url ?? ctx.env.ROLLHOOK_URL ?? DEFAULT_URL,
      token,
      userAgent: `rollhook-cli/${CLI_VERSION}`,
      fetch: ctx.fetch,
    });
  };
  const json = (): boolean => program.opts<{ json?: boolean }>().json === true;
  const printJson = (body: unknown): void => io.out(`${JSON.stringify(body, null, 2)}\n`);

  const afterQueued = async (api: ApiClient, jobId: string, o: WaitOpts): Promise<void> => {
    if (!o.wait) return;
    const r = await follow(api, jobId, io, {
      intervalMs: o.interval,
      timeoutMs: o.timeout,
      sleep: ctx.sleep,
      summaryToStderr: json(),
    });
    if (json() && r.job) printJson(r.job);
    code = r.code;
  };

  program
    .command('status')
    .description('what runs on each target, and how its last deploy went')
    .argument('[target]', 'one target, in full')
    .action(async (target?: string) => {
      const body = await client().call('GET', '/api/v1/targets', targetsBody);
      if (target !== undefined) {
        const t = body.items.find((i) => i.name === target);
        if (!t) {
          io.err(
            `no target ${target} (visible to this token: ${body.items.map((i) => i.name).join(', ') || 'none'})\n`,
          );
          code = EXIT.notFound;
          return;
        }
        if (json()) printJson(t);
        else io.out(`${targetDetail(t)}\n`);
        return;
      }
      if (json()) printJson(body);
      else io.out(`${statusTable(body)}\n`);
    });

  program
    .command('history')
    .description("a target's deploys and rollbacks, newest first")
    .argument('<target>')
    .addOption(new Option('-n, --limit <n>', 'entries to show').argParser(count).default(20))
    .addOption(new Option('--offset <n>', 'entries to skip').argParser(count).default(0))
    .action(async (target: string, o: { limit: number; offset: number }) => {
      const body = await client().call(
        'GET',
        `/api/v1/targets/${encodeURIComponent(target)}/deployments?offset=${o.offset}&limit=${o.limit}`,
        historyBody,
      );
      if (json()) printJson(body);
      else io.out(`${historyTable(body)}\n`);
    });

  waitOptions(
    program
      .command('deploy')
      .description(
        'deploy a commit, or the newest successful pipeline of a ref (webhook rules apply)',
      )
      .argument('<target>')
      .option('--sha <sha>', 'the full commit sha')
      .option('--ref <ref>', "a branch or tag among the target's refs")
      .option('-f, --force', 'deploy even if it runs already, or a newer pipeline was accepted'),
  ).action(
    async (target: string, o: WaitOpts & { sha?: string; ref?: string; force?: boolean }) => {
      if ((o.sha === undefined) === (o.ref === undefined)) {
        io.err('error: give exactly one of --sha and --ref\n');
        code = EXIT.usage;
        return;
      }
      const api = client();
      const body = {
        ...(o.sha !== undefined ? { sha: o.sha } : { ref: o.ref }),
        ...(o.force ? { force: true } : {}),
      };
      const accepted = await api.call(
        'POST',
        `/api/v1/targets/${encodeURIComponent(target)}/deployments`,
        acceptedBody,
        body,
      );
      if (json() && !o.wait) printJson(accepted);
      if (!json())
        io.out(
          `queued deploy of ${target}: ${short(accepted.sha)} (${accepted.ref ?? '?'}, pipeline #${accepted.pipelineId ?? '?'}) as job ${accepted.jobId}\n`,
        );
      await afterQueued(api, accepted.jobId, o);
    },
  );

  waitOptions(
    program
      .command('rollback')
      .description('roll back to the previous release, or to the one named')
      .argument('<target>')
      .option('--to <sha>', 'the release to return to (a sha or a prefix of it)'),
  ).action(async (target: string, o: WaitOpts & { to?: string }) => {
    const api = client();
    const accepted = await api.call(
      'POST',
      `/api/v1/targets/${encodeURIComponent(target)}/rollback`,
      acceptedBody,
      o.to ? { to: o.to } : {},
    );
    if (json() && !o.wait) printJson(accepted);
    if (!json())
      io.out(
        `queued rollback of ${target} to ${short(accepted.toSha)} (${accepted.toRef ?? '?'}) as job ${accepted.jobId}\n`,
      );
    await afterQueued(api, accepted.jobId, o);
  });

  waitOptions(
    program
      .command('job')
      .description('a job: state, steps and their durations, error')
      .argument('<id>'),
  ).action(async (id: string, o: WaitOpts) => {
    const api = client();
    if (o.wait) {
      await afterQueued(api, id, o);
      return;
    }
    const job = await api.call('GET', `/api/v1/jobs/${encodeURIComponent(id)}`, jobBody);
    if (json()) printJson(job);
    else io.out(`${jobSummary(job)}\n`);
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0
      if (err.exitCode !== 0 && err.code === 'rollhook.token') io.err(err.message);
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const mapped = exitCodeFor(err);
    if (mapped === undefined) throw err;
    io.err(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    if (err instanceof ApiRefusedError && err.jobId)
      io.err(`see job ${err.jobId}: rollhook job ${err.jobId}\n`);
    return mapped;
  }
}
