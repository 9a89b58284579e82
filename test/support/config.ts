import { configSchema, type Config } from '../../src/config/schema.ts';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> | T[K] : T[K] };

/** A valid config for tests: one target `app` for project 1 / group/app on ref main. */
export function testConfig(
  over: { redisUrl: string; prefix?: string; targets?: unknown[] } & DeepPartial<
    Omit<Config, 'targets' | 'redis'>
  >,
): Config {
  const { redisUrl, prefix, targets, ...rest } = over;
  return configSchema.parse({
    redis: { url: redisUrl, prefix: prefix ?? `t${Math.random().toString(36).slice(2, 10)}` },
    gitlab: { url: 'http://127.0.0.1:9', token: 'glpat-test-token' },
    server: { port: 0, host: '127.0.0.1' },
    ...rest,
    // worker processes of one test share a config: their /metrics must not fight over one port
    metrics: { port: 0, ...rest.metrics },
    targets: targets ?? [
      {
        name: 'app',
        gitlab: {
          project: 'group/app',
          webhookSecret: 'hook-secret-app',
          refs: ['main', 'release/*'],
        },
        kubernetes: {
          namespace: 'prod',
          deployment: 'app',
          containers: { app: '127.0.0.1:5000/group/app' },
        },
      },
    ],
  });
}
