import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'plugins/**/*.test.ts'],
    testTimeout: 60_000,
    // Two cores: tests that start servers must not compete with each other.
    maxWorkers: 2,
  },
});
