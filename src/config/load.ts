import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { registerSecret } from '../log.ts';
import { ConfigError } from './errors.ts';
import { configSchema, type Config } from './schema.ts';

const SECRET_KEYS = new Set(['webhookSecret', 'signingSecret', 'token', 'password']);

/** Where the config file is: `--config FILE`, else `ROLLHOOK_CONFIG`. */
export function configPath(argv: readonly string[], env: NodeJS.ProcessEnv): string {
  const i = argv.indexOf('--config');
  const fromArg =
    i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--config='))?.slice('--config='.length);
  const path = fromArg ?? env.ROLLHOOK_CONFIG;
  if (!path)
    throw new ConfigError('(none)', ['no config file: pass --config FILE or set ROLLHOOK_CONFIG']);
  return resolve(path);
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    ]);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map(
        (e) =>
          `YAML ${e.code} at line ${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`,
      ),
    );
  }
  const problems: string[] = [];
  const raw = substitute(doc.toJS() as unknown, [], env, problems);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) problems.push(...parsed.error.issues.map(formatIssue));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(file, problems);
  registerConfigSecrets(parsed.data);
  return parsed.data;
}

/** `${NAME}` in any string value takes NAME from the environment; `$${` is a literal `${`. */
function substitute(
  value: unknown,
  path: (string | number)[],
  env: NodeJS.ProcessEnv,
  problems: string[],
): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
      (match, escaped: string, name: string) => {
        if (escaped) return match.slice(1);
        const v = env[name];
        if (v === undefined || v === '') {
          problems.push(`${keyPath(path)}: environment variable ${name} is not set`);
          return '';
        }
        registerSecret(v);
        return v;
      },
    );
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, [...path, i], env, problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substitute(v, [...path, k], env, problems)]),
    );
  }
  return value;
}

function keyPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

function formatIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${keyPath([...issue.path, k])}: unknown key`).join('; ');
  }
  // zod's messages name types and patterns, never the received value, so secrets stay out.
  return `${keyPath(issue.path)}: ${issue.message}`;
}

function registerConfigSecrets(config: Config): void {
  const walk = (v: unknown, key: string): void => {
    if (typeof v === 'string' && SECRET_KEYS.has(key)) registerSecret(v);
    else if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(config, '');
}
