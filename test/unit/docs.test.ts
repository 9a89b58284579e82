import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSchema } from '../../src/config/schema.ts';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  additionalProperties?: JsonSchema | boolean;
}

/** Every key path of the config, as the reference writes them: `targets[].gitlab.refs`. */
function keyPaths(s: JsonSchema, prefix = ''): string[] {
  const out: string[] = [];
  for (const alt of [...(s.anyOf ?? []), ...(s.oneOf ?? [])]) out.push(...keyPaths(alt, prefix));
  if (s.items) out.push(...keyPaths(s.items, `${prefix}[]`));
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    const path = prefix ? `${prefix}.${k}` : k;
    const nested = keyPaths(v, path);
    out.push(...(nested.length > 0 ? nested : [path]));
  }
  return [...new Set(out)];
}

describe('docs/configuration.md', () => {
  it('documents every key of the config schema', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const paths = keyPaths(
      z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema,
    );
    expect(paths.length).toBeGreaterThan(40);
    // A target's keys are listed in tables under `targets[]`, relative to the target.
    const named = (p: string) =>
      doc.includes(`\`${p}\``) ||
      (p.startsWith('targets[].') && doc.includes(`\`${p.slice('targets[].'.length)}\``));
    const missing = paths.filter((p) => !named(p));
    expect(missing).toEqual([]);
  });
});
