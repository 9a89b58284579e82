import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';

/**
 * JSON-lines logging. Every line carries the correlation id of the webhook delivery or
 * job it belongs to, taken from async context so adapters deep in a call chain need not
 * thread it through their signatures.
 */
export interface LogContext {
  correlationId: string;
  [key: string]: string | number | undefined;
}

const context = new AsyncLocalStorage<LogContext>();

export function withLogContext<T>(ctx: LogContext, fn: () => T): T {
  return context.run({ ...context.getStore(), ...ctx }, fn);
}

export function currentCorrelationId(): string | undefined {
  return context.getStore()?.correlationId;
}

const SECRET_KEY = /(token|secret|password|authorization|cookie|signature|sha256)$/i;
const REDACTED = '[redacted]';
const knownSecrets = new Set<string>();

/** Values registered here are replaced wherever they appear in a log line. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) knownSecrets.add(value);
}

function scrubString(s: string): string {
  let out = s;
  for (const secret of knownSecrets)
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out.replace(/(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${REDACTED}`);
}

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[depth]';
  if (typeof value === 'string') return scrubString(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) {
    return { name: value.name, message: scrubString(value.message), ...redactObject(value, depth) };
  }
  if (value && typeof value === 'object') return redactObject(value, depth);
  return value;
}

function redactObject(value: object, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null ? REDACTED : redact(v, depth + 1);
  }
  return out;
}

const redactFormat = winston.format((info) => {
  const store = context.getStore();
  const scrubbed = redactObject(info, 0);
  Object.assign(info, store ?? {}, scrubbed);
  if (typeof info.message === 'string') info.message = scrubString(info.message);
  return info;
});

export const logger = winston.createLogger({
  level: process.env.LOG_LEVEL ?? 'info',
  format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json()),
  defaultMeta: { service: 'rollhook' },
  transports: [new winston.transports.Console({ silent: process.env.LOG_SILENT === '1' })],
});

export type Logger = winston.Logger;
