import { defineConfig } from 'vitest/config';

// Tests that change the broker for everyone (a resource alarm blocks every
// publisher on it) would break any test running beside them.
const BROKER_WIDE = '**/*.broker-wide.test.ts';

// Unit tests need nothing running; integration and end-to-end tests talk to the
// real RabbitMQ and ClickHouse that `npm run services` provides.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['*/src/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**', '*/src/**/*.integration.test.ts', BROKER_WIDE],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['*/src/**/*.integration.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**', BROKER_WIDE],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Alone: a higher groupOrder starts only once every lower group has
        // finished, and one file at a time within it.
        test: {
          name: 'broker-wide',
          include: ['*/src/**/*.broker-wide.test.ts', 'test/**/*.broker-wide.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**'],
          sequence: { groupOrder: 1 },
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
