/**
 * Runs every benchmark one after another (they are noisy on a shared machine; never run
 * them in parallel). Each writes its numbers to bench/results/<name>.json.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const benches = ['ingest.ts', 'promote.ts', 'rollout.ts', 'deploy.ts'];
const dir = fileURLToPath(new URL('.', import.meta.url));
let failed = 0;
for (const b of benches) {
  console.log(`== ${b}`);
  const r = spawnSync(process.execPath, [`${dir}${b}`], {
    stdio: 'inherit',
    env: { ...process.env, LOG_SILENT: '1' },
  });
  if (r.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
