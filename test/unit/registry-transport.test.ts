import { describe, expect, it } from 'vitest';
import {
  RegistryAuthError,
  RegistryPermissionError,
  RegistryUnavailableError,
  isRetryable,
} from '../../src/registry/errors.ts';
import { HostTransport, type RegistryRequestEvent } from '../../src/registry/transport.ts';

type Handler = (url: URL, init: RequestInit) => Response | Promise<Response>;

/** A fake fetch at the transport's edge; every test asserts on the exchanges it saw. */
function fakeFetch(handler: Handler) {
  const calls: { method: string; url: URL; authorization: string | undefined }[] = [];
  const impl = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const headers = (init.headers ?? {}) as Record<string, string>;
    calls.push({ method: init.method ?? 'GET', url, authorization: headers.authorization });
    return handler(url, init);
  }) as typeof fetch;
  return { impl, calls };
}

const creds = {
  host: 'reg.test',
  url: 'https://reg.test',
  username: 'bot',
  password: 's3cret-password',
};
const challenge = (scope: string, error?: string) =>
  `Bearer realm="https://auth.test/token",service="reg",scope="${scope}"${error ? `,error="${error}"` : ''}`;

function transport(
  handler: Handler,
  extra: { now?: () => number; events?: RegistryRequestEvent[] } = {},
) {
  const f = fakeFetch(handler);
  const t = new HostTransport(creds, {
    fetch: f.impl,
    backoffMs: 1,
    maxBackoffMs: 2,
    sleep: async () => undefined,
    ...(extra.now ? { now: extra.now } : {}),
    onRequest: (e) => extra.events?.push(e),
  });
  return { t, calls: f.calls };
}

const req = {
  method: 'HEAD',
  path: '/v2/group/app/manifests/prod',
  repository: 'group/app',
  action: 'pull' as const,
};

describe('HostTransport authentication', () => {
  it('answers a Bearer challenge with a token for the scope named, then reuses it', async () => {
    let issued = 0;
    const { t, calls } = transport((url, init) => {
      if (url.host === 'auth.test') {
        issued++;
        expect(url.searchParams.get('scope')).toBe('repository:group/app:pull');
        expect(url.searchParams.get('service')).toBe('reg');
        expect((init.headers as Record<string, string>).authorization).toBe(
          `Basic ${Buffer.from('bot:s3cret-password').toString('base64')}`,
        );
        return Response.json({ access_token: `tok${issued}`, expires_in: 300 });
      }
      const auth = (init.headers as Record<string, string>).authorization;
      return auth === 'Bearer tok1'
        ? new Response(null, { status: 200 })
        : new Response(null, {
            status: 401,
            headers: { 'www-authenticate': challenge('repository:group/app:pull') },
          });
    });
    expect((await t.request(req)).status).toBe(200);
    expect((await t.request(req)).status).toBe(200);
    expect(calls.map((c) => `${c.method} ${c.url.host} ${c.authorization ?? '-'}`)).toEqual([
      'HEAD reg.test -',
      expect.stringMatching(/^GET auth.test Basic /),
      'HEAD reg.test Bearer tok1',
      'HEAD reg.test Bearer tok1',
    ]);
  });

  it('renews a token whose expires_in has passed before sending it', async () => {
    let now = 1_000_000;
    let issued = 0;
    const { t, calls } = transport(
      (url, init) => {
        if (url.host === 'auth.test')
          return Response.json({ token: `tok${++issued}`, expires_in: 60 });
        const auth = (init.headers as Record<string, string>).authorization;
        return auth?.startsWith('Bearer ')
          ? new Response(null, { status: 200 })
          : new Response(null, {
              status: 401,
              headers: { 'www-authenticate': challenge('repository:group/app:pull') },
            });
      },
      { now: () => now },
    );
    await t.request(req);
    now += 61_000;
    await t.request(req);
    expect(issued).toBe(2);
    expect(calls.at(-1)?.authorization).toBe('Bearer tok2');
  });

  it('concurrent requests share one token fetch', async () => {
    let issued = 0;
    const { t } = transport(async (url, init) => {
      if (url.host === 'auth.test') {
        issued++;
        await new Promise((r) => setTimeout(r, 5));
        return Response.json({ token: 'tok', expires_in: 300 });
      }
      const auth = (init.headers as Record<string, string>).authorization;
      return auth === 'Bearer tok'
        ? new Response(null, { status: 200 })
        : new Response(null, {
            status: 401,
            headers: { 'www-authenticate': challenge('repository:group/app:pull') },
          });
    });
    const answers = await Promise.all(Array.from({ length: 8 }, () => t.request(req)));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(issued).toBe(1);
  });

  it('insufficient_scope with a fresh token is a permission error naming the action', async () => {
    const { t } = transport((url, init) => {
      if (url.host === 'auth.test') return Response.json({ token: 'tok' });
      const auth = (init.headers as Record<string, string>).authorization;
      return new Response(null, {
        status: 401,
        headers: {
          'www-authenticate': challenge(
            'repository:group/app:delete',
            auth ? 'insufficient_scope' : undefined,
          ),
        },
      });
    });
    const err = await t
      .request({ ...req, method: 'DELETE', action: 'delete' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryPermissionError);
    expect(err).toMatchObject({ action: 'delete', repository: 'group/app', username: 'bot' });
    expect(String(err)).not.toContain('s3cret');
    expect(isRetryable(err)).toBe(false);
  });

  it('invalid_token with a fresh token is an auth error, asked once only', async () => {
    let tokenRequests = 0;
    const { t } = transport((url, init) => {
      if (url.host === 'auth.test') {
        tokenRequests++;
        return Response.json({ token: 'tok' });
      }
      const auth = (init.headers as Record<string, string>).authorization;
      return new Response(null, {
        status: 401,
        headers: {
          'www-authenticate': challenge(
            'repository:group/app:pull',
            auth ? 'invalid_token' : undefined,
          ),
        },
      });
    });
    await expect(t.request(req)).rejects.toBeInstanceOf(RegistryAuthError);
    expect(tokenRequests).toBe(1);
  });

  it('a token server refusing the password is an auth error that names the user, not the password', async () => {
    const { t } = transport((url) =>
      url.host === 'auth.test'
        ? new Response('denied', { status: 401 })
        : new Response(null, {
            status: 401,
            headers: { 'www-authenticate': challenge('repository:group/app:pull') },
          }),
    );
    const err = await t.request(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryAuthError);
    expect(String(err)).toContain('user bot');
    expect(String(err)).not.toContain('s3cret');
  });

  it('uses Basic auth when the registry asks for it, and sends it up front afterwards', async () => {
    const basic = `Basic ${Buffer.from('bot:s3cret-password').toString('base64')}`;
    const { t, calls } = transport((_url, init) =>
      (init.headers as Record<string, string>).authorization === basic
        ? new Response(null, { status: 200 })
        : new Response(null, {
            status: 401,
            headers: { 'www-authenticate': 'Basic realm="Registry"' },
          }),
    );
    await t.request(req);
    await t.request(req);
    expect(calls.map((c) => c.authorization ?? '-')).toEqual(['-', basic, basic]);
  });

  it('a 401 without a challenge is an auth error', async () => {
    const { t } = transport(() => new Response(null, { status: 401 }));
    await expect(t.request(req)).rejects.toThrow(/without a usable WWW-Authenticate/);
  });
});

describe('HostTransport retries', () => {
  it('retries network errors, 429 and 5xx, then answers', async () => {
    const answers: (number | 'throw')[] = ['throw', 429, 503, 200];
    const events: RegistryRequestEvent[] = [];
    const { t } = transport(
      () => {
        const a = answers.shift();
        if (a === 'throw') throw new TypeError('fetch failed');
        return new Response(null, { status: a });
      },
      { events },
    );
    expect((await t.request(req)).status).toBe(200);
    expect(events.map((e) => e.status)).toEqual(['network-error', 429, 503, 200]);
  });

  it('gives up after the attempts with a retryable RegistryUnavailableError', async () => {
    const { t, calls } = transport(() => new Response(null, { status: 502 }));
    const err = await t.request(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect(err).toMatchObject({ status: 502, attempts: 4, method: 'HEAD' });
    expect(isRetryable(err)).toBe(true);
    expect(calls).toHaveLength(4);
  });

  it('does not retry other 4xx', async () => {
    for (const status of [400, 403, 404, 405, 409]) {
      const { t, calls } = transport(() => new Response(null, { status }));
      expect((await t.request(req)).status).toBe(status);
      expect(calls).toHaveLength(1);
    }
  });
});
