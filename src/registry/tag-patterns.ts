/**
 * Tag patterns as users write them in config: `*` for any run of characters, `?` for one,
 * everything else literal (tags may contain `.`, `-` and `_`, which must not act as regex).
 */
export function tagPatternToRegExp(pattern: string): RegExp {
  let re = '';
  for (const ch of pattern) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function matchesTagPattern(tag: string, pattern: string): boolean {
  return tagPatternToRegExp(pattern).test(tag);
}

/** The first pattern the tag matches, or undefined. */
export function firstMatchingPattern(tag: string, patterns: readonly string[]): string | undefined {
  return patterns.find((p) => matchesTagPattern(tag, p));
}

/** True when the pattern names exactly one tag, so the tag can be read back directly. */
export function isLiteralPattern(pattern: string): boolean {
  return !/[*?]/.test(pattern);
}
