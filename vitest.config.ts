import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { PUBLIC_ENTRIES } from './scripts/package-root.js';

export default defineConfig({
  // An app module imported by a test resolves `cloudsocket` and `cloudsocket/*` as tsconfig.json's paths do: to these sources.
  resolve: {
    alias: Object.entries(PUBLIC_ENTRIES).map(([specifier, path]) => ({
      find: new RegExp(`^${specifier}$`),
      replacement: fileURLToPath(new URL(`./${path}.ts`, import.meta.url)),
    })),
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites start servers and child processes; two cores are shared between them.
    maxWorkers: 2,
    // Each test file is its own process, and each would print the AWS SDK's Node version notice once.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
