import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';

/**
 * An HTTP proxy in front of a test registry that injects faults a real registry shows only
 * under load or over time: 5xx, 429, connection resets, a token expiring mid-run, a wrong
 * Content-Type. Rules apply to matching requests a set number of times, then requests pass.
 */
export type Fault =
  /** answer this status without forwarding (after `run`, to emulate what another registry would do) */
  | {
      kind: 'status';
      status: number;
      headers?: Record<string, string>;
      body?: string;
      run?: () => Promise<void>;
    }
  /** forward (the registry acts), then answer this status instead of the registry's */
  | { kind: 'forward-then-status'; status: number }
  /** forward without credentials and answer the registry's challenge with error="invalid_token", as for an expired token */
  | { kind: 'invalid-token' }
  /** forward, then replace the response's Content-Type */
  | { kind: 'content-type'; value: string }
  /** close the connection without an answer */
  | { kind: 'reset' }
  /** run something (another actor's change) first, then forward as usual */
  | { kind: 'before'; run: () => Promise<void> };

export interface FaultRule {
  method?: string;
  /** matched against the request path (with query) */
  path?: RegExp;
  /** only requests that carry a Bearer token */
  withToken?: boolean;
  /** let this many matching requests pass before the rule applies */
  skip?: number;
  times: number;
  fault: Fault;
}

export interface FaultProxy {
  url: string;
  host: string;
  add(rule: FaultRule): void;
  clear(): void;
  /** method + path of every request seen, in order */
  seen: { method: string; path: string; status: number | 'reset' }[];
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const rules: FaultRule[] = [];
  const seen: FaultProxy['seen'] = [];

  const forward = (
    req: IncomingMessage,
    body: Buffer,
    dropAuth: boolean,
  ): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers };
      if (dropAuth) delete headers.authorization;
      const up = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const out: Record<string, string | string[]> = {};
            for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = v;
            resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
          });
          res.on('error', reject);
        },
      );
      up.on('error', reject);
      up.end(body);
    });

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const method = req.method ?? 'GET';
        const path = req.url ?? '/';
        const rule = rules.find(
          (r) =>
            r.times > 0 &&
            (!r.method || r.method === method) &&
            (!r.path || r.path.test(path)) &&
            (!r.withToken || /^Bearer /i.test(req.headers.authorization ?? '')),
        );
        let fault = rule?.fault;
        if (rule && (rule.skip ?? 0) > 0) {
          rule.skip = (rule.skip ?? 0) - 1;
          fault = undefined;
        } else if (rule) rule.times--;
        try {
          if (fault?.kind === 'reset') {
            seen.push({ method, path, status: 'reset' });
            req.socket.destroy();
            return;
          }
          if (fault?.kind === 'status') {
            await fault.run?.();
            seen.push({ method, path, status: fault.status });
            res
              .writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers })
              .end(fault.body ?? '{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}');
            return;
          }
          if (fault?.kind === 'before') await fault.run();
          const answer = await forward(req, body, fault?.kind === 'invalid-token');
          if (fault?.kind === 'forward-then-status') {
            seen.push({ method, path, status: fault.status });
            res
              .writeHead(fault.status, { 'content-type': 'application/json' })
              .end('{"errors":[{"code":"UNKNOWN","message":"injected fault after forwarding"}]}');
            return;
          }
          if (fault?.kind === 'invalid-token') {
            const challenge = String(answer.headers['www-authenticate'] ?? '');
            answer.headers['www-authenticate'] = `${challenge},error="invalid_token"`;
            answer.status = 401;
          }
          if (fault?.kind === 'content-type') answer.headers['content-type'] = fault.value;
          seen.push({ method, path, status: answer.status });
          delete answer.headers['transfer-encoding'];
          res
            .writeHead(answer.status, answer.headers)
            .end(method === 'HEAD' ? undefined : answer.body);
        } catch (err) {
          seen.push({ method, path, status: 502 });
          res.writeHead(502).end(String(err));
        }
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr !== 'object') throw new Error('fault proxy: no address');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    host: `127.0.0.1:${addr.port}`,
    add: (rule) => rules.push(rule),
    clear: () => {
      rules.length = 0;
    },
    seen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
