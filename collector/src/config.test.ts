import { describe, expect, it } from 'vitest';
import { CONFIG_HELP, ConfigError, parseConfig } from './config.js';

describe('parseConfig', () => {
  it('uses the documented defaults with an empty environment', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      rabbitmqUrl: 'amqp://guest:guest@127.0.0.1:5672',
      rabbitmqConnectTimeoutMs: 10_000,
      queue: 'zipkin',
      queueType: 'classic',
      deadLetterExchange: 'zipkin.dlx',
      deadLetterQueue: 'zipkin.dlq',
      clickhouseUrl: 'http://127.0.0.1:8123',
      clickhouseDatabase: 'tracehouse',
      adminPort: 9412,
      batchSpans: 10_000,
      batchAgeMs: 1_000,
      retentionDays: undefined,
      queryTimeoutMs: 30_000,
      insertTimeoutMs: 300_000,
      logLevel: 'info',
    });
    // The broker may hand out enough messages for every concurrent insert plus the open batch.
    expect(config.prefetch).toBe(config.batchMessages * (config.insertConcurrency + 1));
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.queueArguments)).toBe(true);
  });

  it('reads every variable it documents', () => {
    // Every value differs from its default, so a misspelled name in config.ts fails here.
    const env = {
      TRACEHOUSE_RABBITMQ_URL: 'amqps://u:p@mq.example:5671/vh',
      TRACEHOUSE_RABBITMQ_CONNECT_TIMEOUT_MS: '2500',
      TRACEHOUSE_QUEUE: 'spans',
      TRACEHOUSE_QUEUE_TYPE: 'QUORUM',
      TRACEHOUSE_QUEUE_ARGUMENTS: '{"x-max-length": 5}',
      TRACEHOUSE_DEAD_LETTER_EXCHANGE: 'dlx',
      TRACEHOUSE_DEAD_LETTER_QUEUE: 'dlq',
      TRACEHOUSE_CLICKHOUSE_URL: 'https://ch:8443',
      TRACEHOUSE_CLICKHOUSE_DATABASE: 'traces',
      TRACEHOUSE_CLICKHOUSE_TIMEOUT_MS: '12000',
      TRACEHOUSE_CLICKHOUSE_INSERT_TIMEOUT_MS: '90000',
      TRACEHOUSE_RETENTION_DAYS: '30',
      TRACEHOUSE_COLLECTOR_RETENTION_INTERVAL_MS: '60000',
      TRACEHOUSE_COLLECTOR_HOST: '127.0.0.2',
      TRACEHOUSE_COLLECTOR_PORT: '0',
      TRACEHOUSE_COLLECTOR_BATCH_SPANS: '500',
      TRACEHOUSE_COLLECTOR_BATCH_MESSAGES: '7',
      TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '250',
      TRACEHOUSE_COLLECTOR_INSERT_CONCURRENCY: '3',
      TRACEHOUSE_COLLECTOR_INSERT_MAX_SPANS: '2000',
      TRACEHOUSE_COLLECTOR_PREFETCH: '99',
      TRACEHOUSE_COLLECTOR_MAX_MESSAGE_BYTES: '2048',
      TRACEHOUSE_COLLECTOR_MAX_PENDING_BYTES: '65536',
      TRACEHOUSE_COLLECTOR_RETRY_INITIAL_MS: '300',
      TRACEHOUSE_COLLECTOR_RETRY_MAX_MS: '7000',
      TRACEHOUSE_COLLECTOR_RECONNECT_INITIAL_MS: '150',
      TRACEHOUSE_COLLECTOR_RECONNECT_MAX_MS: '9000',
      TRACEHOUSE_COLLECTOR_SHUTDOWN_TIMEOUT_MS: '4000',
      TRACEHOUSE_LOG_LEVEL: 'debug',
    };
    // toEqual, not toMatchObject: a setting added without a line here fails too.
    expect(parseConfig(env)).toEqual({
      rabbitmqUrl: 'amqps://u:p@mq.example:5671/vh',
      rabbitmqConnectTimeoutMs: 2_500,
      queue: 'spans',
      queueType: 'quorum',
      queueArguments: { 'x-max-length': 5 },
      deadLetterExchange: 'dlx',
      deadLetterQueue: 'dlq',
      clickhouseUrl: 'https://ch:8443',
      clickhouseDatabase: 'traces',
      queryTimeoutMs: 12_000,
      insertTimeoutMs: 90_000,
      retentionDays: 30,
      retentionIntervalMs: 60_000,
      adminHost: '127.0.0.2',
      adminPort: 0,
      batchSpans: 500,
      batchMessages: 7,
      batchAgeMs: 250,
      insertConcurrency: 3,
      insertMaxSpans: 2_000,
      prefetch: 99,
      maxMessageBytes: 2048,
      maxPendingBytes: 65_536,
      retryInitialMs: 300,
      retryMaxMs: 7_000,
      reconnectInitialMs: 150,
      reconnectMaxMs: 9_000,
      shutdownTimeoutMs: 4_000,
      logLevel: 'debug',
    });
    // And every variable --help lists is set above.
    const documented = new Set(CONFIG_HELP.match(/\bTRACEHOUSE_\w+/g));
    expect([...documented].filter((variable) => !(variable in env))).toEqual([]);
  });

  it('derives the dead-letter names and the prefetch from other settings', () => {
    const config = parseConfig({ TRACEHOUSE_QUEUE: 'q1', TRACEHOUSE_COLLECTOR_BATCH_SPANS: '1000', TRACEHOUSE_COLLECTOR_INSERT_CONCURRENCY: '1' });
    expect(config.deadLetterQueue).toBe('q1.dlq');
    expect(config.batchMessages).toBe(20);
    expect(config.prefetch).toBe(40);
    expect(config.insertMaxSpans).toBe(50_000);
    expect(parseConfig({ TRACEHOUSE_COLLECTOR_BATCH_SPANS: '80000' }).insertMaxSpans).toBe(80_000);
  });

  it('refuses inserts smaller than a batch', () => {
    expect(() => parseConfig({ TRACEHOUSE_COLLECTOR_BATCH_SPANS: '1000', TRACEHOUSE_COLLECTOR_INSERT_MAX_SPANS: '999' })).toThrow(
      /TRACEHOUSE_COLLECTOR_INSERT_MAX_SPANS: must be at least TRACEHOUSE_COLLECTOR_BATCH_SPANS \(1000\)/,
    );
  });

  it('treats blank values as unset', () => {
    expect(parseConfig({ TRACEHOUSE_QUEUE: '  ', TRACEHOUSE_COLLECTOR_PORT: '' }).queue).toBe('zipkin');
  });

  const bad: Array<[string, string, RegExp]> = [
    ['TRACEHOUSE_COLLECTOR_PORT', '70000', /whole number from 0 to 65535/],
    ['TRACEHOUSE_COLLECTOR_PORT', 'http', /whole number/],
    ['TRACEHOUSE_COLLECTOR_BATCH_SPANS', '0', /from 1 to/],
    ['TRACEHOUSE_COLLECTOR_BATCH_SPANS', '1e4', /whole number/],
    ['TRACEHOUSE_COLLECTOR_BATCH_AGE_MS', '-5', /whole number/],
    ['TRACEHOUSE_COLLECTOR_PREFETCH', '1.5', /whole number/],
    ['TRACEHOUSE_COLLECTOR_MAX_PENDING_BYTES', '512', /from 1024 to/],
    ['TRACEHOUSE_RABBITMQ_URL', 'localhost:5672', /amqp/],
    ['TRACEHOUSE_RABBITMQ_URL', 'http://localhost', /amqp: or amqps:/],
    ['TRACEHOUSE_CLICKHOUSE_URL', 'tcp://ch:9000', /http: or https:/],
    // What @clickhouse/client refuses (storage's rule), not only the scheme.
    ['TRACEHOUSE_CLICKHOUSE_URL', 'http://127.0.0.1:8123/?database=x', /Unknown URL parameters: database/],
    ['TRACEHOUSE_CLICKHOUSE_URL', 'http://ch:8123?request_timeout=soon', /request_timeout/],
    ['TRACEHOUSE_QUEUE_TYPE', 'stream', /classic, quorum/],
    ['TRACEHOUSE_QUEUE_ARGUMENTS', '[1]', /JSON object/],
    ['TRACEHOUSE_QUEUE_ARGUMENTS', '{oops', /JSON object/],
    ['TRACEHOUSE_QUEUE', 'has space', /name of letters/],
    // Storage's identifier rule, not the AMQP name rule: these would pass as queue names.
    ['TRACEHOUSE_CLICKHOUSE_DATABASE', 'tracehouse-prod', /"tracehouse-prod" is not a plain identifier/],
    ['TRACEHOUSE_CLICKHOUSE_DATABASE', 'traces.prod', /not a plain identifier/],
    ['TRACEHOUSE_CLICKHOUSE_DATABASE', '2024traces', /not a plain identifier/],
    ['TRACEHOUSE_CLICKHOUSE_DATABASE', 'x'.repeat(64), /at most 63 characters/],
    ['TRACEHOUSE_CLICKHOUSE_DATABASE', 'system', /ClickHouse's own; expected letters, digits and _/],
    ['TRACEHOUSE_RETENTION_DAYS', '0', /from 1 to/],
    ['TRACEHOUSE_LOG_LEVEL', 'loud', /one of fatal/],
  ];
  for (const [variable, value, accepts] of bad) {
    it(`rejects ${variable}=${value.slice(0, 20)} naming the variable`, () => {
      let caught: unknown;
      try {
        parseConfig({ [variable]: value });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect(caught).toMatchObject({ code: 'config_invalid', variable });
      expect((caught as ConfigError).message).toMatch(new RegExp(`^${variable}: `));
      expect((caught as ConfigError).message).toMatch(accepts);
    });
  }

  it('accepts ClickHouse URLs with the parameters the client knows', () => {
    for (const url of ['http://u:p@ch:8123/', 'https://gw.example/?pathname=/clickhouse', 'http://ch:8123/?ch_async_insert=1&http_header_X-Team=obs']) {
      expect(parseConfig({ TRACEHOUSE_CLICKHOUSE_URL: url }).clickhouseUrl).toBe(url);
    }
  });

  it('accepts every database name the store accepts', () => {
    for (const database of ['_t', 'Traces_2', 'x'.repeat(63)]) {
      expect(parseConfig({ TRACEHOUSE_CLICKHOUSE_DATABASE: database }).clickhouseDatabase).toBe(database);
    }
  });

  it('rejects a retry maximum below the initial delay', () => {
    expect(() => parseConfig({ TRACEHOUSE_COLLECTOR_RETRY_INITIAL_MS: '500', TRACEHOUSE_COLLECTOR_RETRY_MAX_MS: '100' })).toThrow(
      /TRACEHOUSE_COLLECTOR_RETRY_MAX_MS/,
    );
  });

  it('refuses a dead-letter queue that is the span queue, where poison messages would loop forever', () => {
    for (const env of [
      { TRACEHOUSE_QUEUE: 'spans', TRACEHOUSE_DEAD_LETTER_QUEUE: 'spans' },
      { TRACEHOUSE_DEAD_LETTER_QUEUE: 'zipkin' },
    ]) {
      let caught: unknown;
      try {
        parseConfig(env);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect(caught).toMatchObject({ code: 'config_invalid', variable: 'TRACEHOUSE_DEAD_LETTER_QUEUE' });
      expect((caught as ConfigError).message).toMatch(/^TRACEHOUSE_DEAD_LETTER_QUEUE: must differ from TRACEHOUSE_QUEUE \("\w+"\)/);
    }
  });

  it('refuses a queue type hidden in the arguments that contradicts TRACEHOUSE_QUEUE_TYPE', () => {
    expect(() => parseConfig({ TRACEHOUSE_QUEUE_ARGUMENTS: '{"x-queue-type":"quorum"}' })).toThrow(/TRACEHOUSE_QUEUE_ARGUMENTS/);
  });
});
