import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './config.js';

describe('parseConfig', () => {
  it('has the documented defaults and is frozen', () => {
    const config = parseConfig({});
    expect(config).toEqual({
      port: 9411,
      host: '0.0.0.0',
      clickhouseUrl: 'http://127.0.0.1:8123',
      clickhouseDatabase: 'tracehouse',
      defaultLimit: 10,
      maxLimit: 1000,
      defaultLookbackMs: 86_400_000,
      maxLookbackMs: 604_800_000,
      queryTimeoutMs: 10_000,
      maxResultBytes: 64 * 1024 * 1024,
      corsOrigins: '*',
      bearerToken: undefined,
      strictTraceId: true,
      autocompleteKeys: undefined,
      logLevel: 'info',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads every variable', () => {
    const config = parseConfig({
      TRACEHOUSE_QUERY_PORT: '9500',
      TRACEHOUSE_QUERY_HOST: '127.0.0.1',
      TRACEHOUSE_CLICKHOUSE_URL: 'https://ch.example:8443',
      TRACEHOUSE_CLICKHOUSE_DATABASE: 'traces_2',
      TRACEHOUSE_QUERY_DEFAULT_LIMIT: '20',
      TRACEHOUSE_QUERY_MAX_LIMIT: '50',
      TRACEHOUSE_QUERY_DEFAULT_LOOKBACK_MS: '3600000',
      TRACEHOUSE_QUERY_MAX_LOOKBACK_MS: '7200000',
      TRACEHOUSE_QUERY_TIMEOUT_MS: '2500',
      TRACEHOUSE_QUERY_MAX_RESULT_BYTES: '1048576',
      TRACEHOUSE_QUERY_CORS_ORIGINS: 'http://localhost:3000, https://ui.example/',
      TRACEHOUSE_QUERY_BEARER_TOKEN: 's3cret-token',
      TRACEHOUSE_QUERY_STRICT_TRACE_ID: 'false',
      TRACEHOUSE_AUTOCOMPLETE_KEYS: 'http.method, environment',
      TRACEHOUSE_LOG_LEVEL: 'WARN',
    });
    expect(config).toMatchObject({
      port: 9500,
      host: '127.0.0.1',
      clickhouseUrl: 'https://ch.example:8443',
      clickhouseDatabase: 'traces_2',
      defaultLimit: 20,
      maxLimit: 50,
      defaultLookbackMs: 3_600_000,
      maxLookbackMs: 7_200_000,
      queryTimeoutMs: 2500,
      maxResultBytes: 1_048_576,
      corsOrigins: ['http://localhost:3000', 'https://ui.example'],
      bearerToken: 's3cret-token',
      strictTraceId: false,
      autocompleteKeys: ['http.method', 'environment'],
      logLevel: 'warn',
    });
  });

  it('accepts CORS off', () => {
    expect(parseConfig({ TRACEHOUSE_QUERY_CORS_ORIGINS: 'off' }).corsOrigins).toBe('off');
  });

  const bad: Array<[string, string]> = [
    ['TRACEHOUSE_QUERY_PORT', '94a11'],
    ['TRACEHOUSE_QUERY_PORT', '70000'],
    ['TRACEHOUSE_CLICKHOUSE_URL', 'ftp://x'],
    ['TRACEHOUSE_CLICKHOUSE_URL', 'not a url'],
    ['TRACEHOUSE_CLICKHOUSE_DATABASE', 'x; DROP TABLE y'],
    ['TRACEHOUSE_CLICKHOUSE_DATABASE', 'tracehouse-prod'],
    ['TRACEHOUSE_CLICKHOUSE_DATABASE', `t${'x'.repeat(63)}`],
    ['TRACEHOUSE_CLICKHOUSE_DATABASE', 'system'],
    ['TRACEHOUSE_QUERY_MAX_LIMIT', '0'],
    ['TRACEHOUSE_QUERY_DEFAULT_LIMIT', '5000'],
    ['TRACEHOUSE_QUERY_MAX_LOOKBACK_MS', '-1'],
    ['TRACEHOUSE_QUERY_TIMEOUT_MS', '1.5'],
    ['TRACEHOUSE_QUERY_MAX_RESULT_BYTES', '64MB'],
    ['TRACEHOUSE_QUERY_MAX_RESULT_BYTES', '100'],
    ['TRACEHOUSE_QUERY_CORS_ORIGINS', 'localhost:3000'],
    ['TRACEHOUSE_QUERY_BEARER_TOKEN', 'short'],
    ['TRACEHOUSE_QUERY_BEARER_TOKEN', 'has space in it'],
    ['TRACEHOUSE_QUERY_STRICT_TRACE_ID', 'maybe'],
    ['TRACEHOUSE_AUTOCOMPLETE_KEYS', 'a,,b'],
    ['TRACEHOUSE_LOG_LEVEL', 'loud'],
  ];
  it.each(bad)('rejects %s=%s naming the variable and what it accepts', (name, value) => {
    let error: unknown;
    try {
      parseConfig({ [name]: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'config_invalid', variable: name });
    expect((error as ConfigError).message).toContain(`${name} accepts`);
  });

  it("says a database was refused for being ClickHouse's own, not for its characters", () => {
    expect(() => parseConfig({ TRACEHOUSE_CLICKHOUSE_DATABASE: 'system' })).toThrow(
      /^TRACEHOUSE_CLICKHOUSE_DATABASE="system" is invalid \(database "system" is ClickHouse's own\): TRACEHOUSE_CLICKHOUSE_DATABASE accepts /,
    );
  });

  it('never writes a refused bearer token into the message (it would end up in logs)', () => {
    expect(() => parseConfig({ TRACEHOUSE_QUERY_BEARER_TOKEN: 's3cr3t!' })).toThrow(
      /^TRACEHOUSE_QUERY_BEARER_TOKEN \(7 characters, not shown\) is invalid: /,
    );
    expect(() => parseConfig({ TRACEHOUSE_QUERY_BEARER_TOKEN: 's3cr3t!' })).not.toThrow(/s3cr3t/);
  });

  it('rejects a default limit above the configured maximum', () => {
    expect(() => parseConfig({ TRACEHOUSE_QUERY_MAX_LIMIT: '5', TRACEHOUSE_QUERY_DEFAULT_LIMIT: '6' })).toThrow(
      /TRACEHOUSE_QUERY_DEFAULT_LIMIT accepts an integer from 1 to 5/,
    );
  });
});
