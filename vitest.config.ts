import { defineConfig } from 'vitest/config';

// Integration tests share real servers (Redis, registry, control plane) started once in
// globalSetup; files run one at a time because this machine has two cores and the
// control plane is heavy.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});
