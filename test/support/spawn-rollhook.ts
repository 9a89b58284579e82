import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface RollhookProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Spawns a node script of the repo (relative path) with env, collecting its output. */
export function spawnNode(script: string, args: string[], env: NodeJS.ProcessEnv): RollhookProcess {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: root,
    env: { ...process.env, LOG_SILENT: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited, kill: (s = 'SIGTERM') => child.kill(s) };
}

/** Waits until the process printed a line matching re (or exited, which fails). */
export async function waitForOutput(
  p: RollhookProcess,
  re: RegExp,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (re.test(p.output())) return;
    if (p.child.exitCode !== null)
      throw new Error(`process exited ${p.child.exitCode} before printing ${re}:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${re} after ${timeoutMs} ms:\n${p.output()}`);
}
