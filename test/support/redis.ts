import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, requireBinary, startProcess, waitUntil, type Started } from './processes.ts';

export interface RedisServer {
  url: string;
  port: number;
  proc: Started;
}

/** Debian's redis-server on a free loopback port, without persistence, in a temp dir. */
export async function startRedis(): Promise<RedisServer> {
  const bin = requireBinary(
    '/usr/bin/redis-server',
    "install it with 'apt-get install redis-server' (.ci/run does)",
  );
  const dir = mkdtempSync(join(tmpdir(), 'rollhook-redis-'));
  const port = await freePort();
  const proc = startProcess(
    'redis-server',
    bin,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    {
      logFile: join(dir, 'redis.log'),
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  await waitUntil(
    'redis-server',
    async () => {
      const r = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      r.on('error', () => undefined); // the first tries run before the server listens
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    },
    { timeoutMs: 10_000, proc },
  );
  return { url, port, proc };
}
