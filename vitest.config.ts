import { defineConfig } from 'vitest/config';

// Unit tests need nothing running; integration and end-to-end tests talk to the
// real RabbitMQ and ClickHouse that `npm run services` provides.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['*/src/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**', '*/src/**/*.integration.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['*/src/**/*.integration.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
