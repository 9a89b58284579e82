/** A parsed `WWW-Authenticate` challenge (RFC 7235) as registries send it. */
export type Challenge =
  | {
      scheme: 'bearer';
      realm: string;
      service: string | undefined;
      scope: string | undefined;
      error: string | undefined;
      errorDescription: string | undefined;
    }
  | { scheme: 'basic'; realm: string | undefined };

/**
 * Parses the first Bearer or Basic challenge of a header value; null when there is none.
 * Values may be quoted strings containing commas (`scope="repository:a:pull,push"`),
 * so a naive split on commas is wrong.
 */
export function parseWwwAuthenticate(header: string | null | undefined): Challenge | null {
  if (!header) return null;
  const challenges = splitChallenges(header);
  const bearer = challenges.find((c) => c.scheme === 'bearer');
  if (bearer) {
    const realm = bearer.params.get('realm');
    if (!realm) return null;
    return {
      scheme: 'bearer',
      realm,
      service: bearer.params.get('service'),
      scope: bearer.params.get('scope'),
      error: bearer.params.get('error'),
      errorDescription: bearer.params.get('error_description'),
    };
  }
  const basic = challenges.find((c) => c.scheme === 'basic');
  if (basic) return { scheme: 'basic', realm: basic.params.get('realm') };
  return null;
}

interface RawChallenge {
  scheme: string;
  params: Map<string, string>;
}

function splitChallenges(header: string): RawChallenge[] {
  const out: RawChallenge[] = [];
  let i = 0;
  let current: RawChallenge | undefined;
  const n = header.length;
  const skipSpaceAndCommas = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t' || header[i] === ',')) i++;
  };
  while (i < n) {
    skipSpaceAndCommas();
    const tokenStart = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i] ?? '')) i++;
    const token = header.slice(tokenStart, i);
    if (!token) {
      i++;
      continue;
    }
    let j = i;
    while (j < n && (header[j] === ' ' || header[j] === '\t')) j++;
    if (header[j] === '=' && current) {
      // auth-param: name=value
      i = j + 1;
      while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const valueStart = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ') i++;
        value = header.slice(valueStart, i);
      }
      const key = token.toLowerCase();
      if (!current.params.has(key)) current.params.set(key, value);
    } else {
      current = { scheme: token.toLowerCase(), params: new Map() };
      out.push(current);
    }
  }
  return out;
}
