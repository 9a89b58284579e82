import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { z } from 'zod';
import { logger } from '../log.ts';
import { apiRequest } from './api-request.ts';
import { isTransient, statusOf, toKubeError, type KubeOperation } from './errors.ts';
import { sleep } from '../retry.ts';
import { backoffDelay, type RetryPolicy } from './retry.ts';
import { listView, statusView } from './views.ts';

export interface ListWatchStats {
  /** full lists: the first, and one after each expired watch */
  lists: number;
  watches: number;
  /** watches the server ended with 410 Gone (history compacted): each leads to a relist */
  expired: number;
}

export interface ListWatchOptions<T> {
  kc: KubeConfig;
  /** collection path, e.g. /apis/apps/v1/namespaces/prod/deployments */
  path: string;
  fieldSelector?: string;
  labelSelector?: string;
  schema: z.ZodType<T>;
  key(obj: T): string;
  /** called after every change of `items` (a list, or one event) */
  onChange(): void;
  /** a failure that retrying will not fix, or that outlived the retries */
  onError(err: Error): void;
  /** what the list/watch is for; the verb (list or watch) is filled in per request */
  op: Omit<KubeOperation, 'verb'>;
  /** consecutive failures tolerated before onError */
  retry: RetryPolicy;
  /** server-side watch length; the client's own idle timer cuts a silent watch at 30 s */
  watchTimeoutSeconds: number;
}

class WatchExpired extends Error {
  override readonly name = 'WatchExpired';
}

/**
 * Keeps `items` equal to a collection on the server: list, then watch from the list's
 * resourceVersion; rewatch from the last seen resourceVersion when a watch ends (they always
 * do), and list again when the server says that version is gone (410). This is what
 * `kubectl rollout status` and client-go's reflector do.
 */
export class ListWatch<T> {
  readonly items = new Map<string, T>();
  readonly stats: ListWatchStats = { lists: 0, watches: 0, expired: 0 };
  /** true once the first list arrived */
  synced = false;
  private readonly opts: ListWatchOptions<T>;
  private resourceVersion: string | undefined;
  private stopped = false;
  private controller: AbortController | undefined;
  private readonly abort = new AbortController();

  constructor(opts: ListWatchOptions<T>) {
    this.opts = opts;
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    this.controller?.abort();
  }

  private query(): Record<string, string | undefined> {
    return { fieldSelector: this.opts.fieldSelector, labelSelector: this.opts.labelSelector };
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let verb = 'list';
      try {
        if (this.resourceVersion === undefined) await this.list();
        verb = 'watch';
        await this.watchOnce();
        failures = 0;
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof WatchExpired || statusOf(err) === 410) {
          this.stats.expired++;
          this.resourceVersion = undefined;
          failures = 0;
          continue;
        }
        failures++;
        if (!isTransient(err) || failures >= this.opts.retry.attempts) {
          this.stop();
          this.opts.onError(toKubeError(err, { ...this.opts.op, verb }, failures));
          return;
        }
        const delay = backoffDelay(this.opts.retry, failures);
        logger.warn('kubernetes watch failed, retrying', {
          step: this.opts.op.step,
          namespace: this.opts.op.namespace,
          status: statusOf(err),
          attempt: failures,
          delayMs: delay,
        });
        await sleep(delay, this.abort.signal).catch(() => undefined);
      }
    }
  }

  private async list(): Promise<void> {
    this.stats.lists++;
    const body = listView.parse(
      await apiRequest(this.opts.kc, {
        method: 'GET',
        path: this.opts.path,
        query: this.query(),
        signal: this.abort.signal,
      }),
    );
    if (this.stopped) return;
    this.items.clear();
    for (const raw of body.items) {
      const obj = this.opts.schema.parse(raw);
      this.items.set(this.opts.key(obj), obj);
    }
    this.resourceVersion = body.metadata?.resourceVersion ?? '';
    this.synced = true;
    this.opts.onChange();
  }

  private watchOnce(): Promise<void> {
    this.stats.watches++;
    return new Promise<void>((resolve, reject) => {
      let failure: Error | undefined;
      const onEvent = (type: string, obj: unknown): void => {
        if (this.stopped || failure) return;
        if (type === 'ERROR') {
          const status = statusView.safeParse(obj);
          const code = status.success ? status.data.code : undefined;
          const message = status.success ? (status.data.message ?? 'watch error') : 'watch error';
          failure =
            code === 410
              ? new WatchExpired(message)
              : Object.assign(new Error(message), { statusCode: code ?? undefined });
          this.controller?.abort();
          return;
        }
        const parsed = this.opts.schema.safeParse(obj);
        if (!parsed.success) return;
        const rv = (parsed.data as { metadata?: { resourceVersion?: string | null } }).metadata
          ?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (type === 'BOOKMARK') return;
        const key = this.opts.key(parsed.data);
        if (type === 'DELETED') this.items.delete(key);
        else this.items.set(key, parsed.data);
        this.opts.onChange();
      };
      const onDone = (err: unknown): void => {
        this.controller = undefined;
        if (failure) reject(failure);
        else if (err && !this.stopped && !isIdleTimeout(err)) reject(err);
        else resolve();
      };
      new Watch(this.opts.kc)
        .watch(
          this.opts.path,
          {
            ...this.query(),
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: this.opts.watchTimeoutSeconds,
          },
          onEvent,
          onDone,
        )
        .then((controller) => {
          this.controller = controller;
          if (this.stopped) controller.abort();
        }, reject);
    });
  }
}

/** The watch client's own 30 s idle timer fired: a quiet watch, not a failure. */
function isIdleTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}
