import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{server,workers,protocol,scripts,pose-service}/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end tests spawn Python workers; keep files sequential on a 2-core machine.
    fileParallelism: false,
    reporters: ['default'],
    // Fails the run when a test leaves posepool-* / e2e-scratch-* entries in the temp folder.
    globalSetup: ['scripts/test/support/temp-leak-check.ts'],
  },
});
