import { execFileSync } from 'node:child_process';
import {
  createHash,
  createPrivateKey,
  createSign,
  timingSafeEqual,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';

/**
 * A registry token server for tests: the flow GitLab's /jwt/auth, Harbor and Docker Hub
 * implement. It signs RS256 JWTs the distribution registry verifies against a self-signed
 * certificate made at start (openssl), and grants each user only the actions listed.
 */
export interface TokenUser {
  password: string;
  /** actions granted on every repository: pull, push, delete, or `*` */
  actions: string[];
}

export interface TokenServer {
  url: string;
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  /** tokens issued so far */
  issued(): number;
  /** lifetime announced in `expires_in` and written into `exp` */
  setTtlSeconds(seconds: number): void;
  /** the next n tokens carry an `exp` long past (the registry refuses them as invalid_token) */
  issueExpired(n: number): void;
  stop(): Promise<void>;
}

export async function startTokenServer(opts: {
  dir: string;
  users: Record<string, TokenUser>;
  service?: string;
  issuer?: string;
  ttlSeconds?: number;
}): Promise<TokenServer> {
  const service = opts.service ?? 'rollhook-test-registry';
  const issuer = opts.issuer ?? 'rollhook-test-issuer';
  const keyPath = join(opts.dir, 'token.key');
  const certPath = join(opts.dir, 'token.crt');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '2',
        '-subj',
        '/CN=rollhook-test-token',
      ],
      { stdio: 'pipe' },
    );
  } catch (err) {
    throw new Error(
      `token server: openssl could not make a certificate (apt-get install openssl): ${String(err)}`,
      { cause: err },
    );
  }
  const key = createPrivateKey(readFileSync(keyPath));
  const kid = libtrustKeyId(new X509Certificate(readFileSync(certPath)).publicKey);
  let ttl = opts.ttlSeconds ?? 300;
  let expiredToIssue = 0;
  let issued = 0;

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    const user = authenticate(req.headers.authorization, opts.users);
    if (user === 'bad') {
      res
        .writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': 'Basic realm="token"',
        })
        .end('{"details":"wrong username or password"}');
      return;
    }
    const access = url.searchParams.getAll('scope').flatMap((scope) => {
      const m = /^(repository|registry):(.+):([^:]+)$/.exec(scope);
      if (!m?.[1] || !m[2] || !m[3]) return [];
      const granted = user ? grant(m[3].split(','), user.actions) : [];
      return [{ type: m[1], name: m[2], actions: granted }];
    });
    const now = Math.floor(Date.now() / 1000);
    const expired = expiredToIssue > 0;
    if (expired) expiredToIssue--;
    const token = signJwt(key, kid, {
      iss: issuer,
      sub: user?.name ?? '',
      aud: service,
      // The registry allows 60 s of clock skew; an hour in the past is expired beyond doubt.
      exp: expired ? now - 3600 : now + ttl,
      nbf: now - 10,
      iat: now,
      jti: `${now}-${issued}`,
      access,
    });
    issued++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: ttl,
        issued_at: new Date().toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr !== 'object') throw new Error('token server: no address');
  const url = `http://127.0.0.1:${addr.port}`;
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certPath,
    issued: () => issued,
    setTtlSeconds: (s) => {
      ttl = s;
    },
    issueExpired: (n) => {
      expiredToIssue = n;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function authenticate(
  header: string | undefined,
  users: Record<string, TokenUser>,
): (TokenUser & { name: string }) | 'bad' | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+(.+)$/i.exec(header);
  if (!m?.[1]) return 'bad';
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const name = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  const user = users[name];
  if (!user) return 'bad';
  const a = Buffer.from(password);
  const b = Buffer.from(user.password);
  return a.length === b.length && timingSafeEqual(a, b) ? { ...user, name } : 'bad';
}

function grant(requested: string[], allowed: string[]): string[] {
  if (allowed.includes('*')) return requested;
  return requested.filter((a) => allowed.includes(a));
}

/** The key id libtrust (and so distribution) computes: base32 of 30 bytes of sha256(SPKI DER), in groups of 4. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return (out.match(/.{1,4}/g) ?? []).join(':');
}

function signJwt(key: KeyObject, kid: string, claims: Record<string, unknown>): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc({ typ: 'JWT', alg: 'RS256', kid })}.${enc(claims)}`;
  const sig = createSign('RSA-SHA256').update(input).sign(key).toString('base64url');
  return `${input}.${sig}`;
}
