import { diag, DiagLogLevel } from '@opentelemetry/api';
import { envDetector } from '@opentelemetry/resources';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_MESSAGE_BYTES, TracingConfigError, parseTracingConfig } from './config.js';

/** What the code under test logged through diag at WARN and above. */
let warnings: string[] = [];
beforeAll(() => {
  const keep = (...args: unknown[]): void => void warnings.push(args.map(String).join(' '));
  diag.setLogger({ error: keep, warn: keep, info: () => undefined, debug: () => undefined, verbose: () => undefined }, DiagLogLevel.WARN);
});
afterAll(() => diag.disable());
beforeEach(() => {
  warnings = [];
});

const DEFAULTS = {
  serviceName: undefined,
  resourceAttributes: {},
  rabbitmqUrl: 'amqp://guest:guest@127.0.0.1:5672',
  queue: 'zipkin',
  encoding: 'json',
  compression: 'gzip',
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  maxBufferedSpans: 8192,
  shutdownTimeoutMillis: 5000,
  scheduledDelayMillis: 5000,
  exportTimeoutMillis: 30000,
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  tracesExporter: 'rabbitmq',
  disabled: false,
};

function configError(run: () => unknown): TracingConfigError | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof TracingConfigError) return error;
    throw error;
  }
  return undefined;
}

describe('parseTracingConfig', () => {
  it('uses the DESIGN.md defaults and freezes the result', () => {
    const config = parseTracingConfig({}, {});
    expect(config).toEqual(DEFAULTS);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.resourceAttributes)).toBe(true);
  });

  it('reads OTEL_* and TRACEHOUSE_* variables', () => {
    const config = parseTracingConfig(
      {},
      {
        OTEL_SERVICE_NAME: 'billing',
        OTEL_RESOURCE_ATTRIBUTES: 'team=payments, region=eu%2Dwest,',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        OTEL_BSP_EXPORT_TIMEOUT: '1000',
        OTEL_BSP_MAX_QUEUE_SIZE: '100',
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '50',
        OTEL_SDK_DISABLED: 'false',
        TRACEHOUSE_RABBITMQ_URL: 'amqps://u:p@rabbit:5671/vhost',
        TRACEHOUSE_QUEUE: 'spans',
        TRACEHOUSE_ENCODING: 'proto3',
        TRACEHOUSE_COMPRESSION: 'none',
        TRACEHOUSE_MAX_MESSAGE_BYTES: '65536',
        TRACEHOUSE_MAX_BUFFERED_SPANS: '1000',
        TRACEHOUSE_SHUTDOWN_TIMEOUT_MS: '2500',
      },
    );
    expect(config).toEqual({
      serviceName: 'billing',
      resourceAttributes: { team: 'payments', region: 'eu-west' },
      rabbitmqUrl: 'amqps://u:p@rabbit:5671/vhost',
      queue: 'spans',
      encoding: 'proto3',
      compression: 'none',
      maxMessageBytes: 65536,
      maxBufferedSpans: 1000,
      shutdownTimeoutMillis: 2500,
      scheduledDelayMillis: 200,
      exportTimeoutMillis: 1000,
      maxQueueSize: 100,
      maxExportBatchSize: 50,
      tracesExporter: 'rabbitmq',
      disabled: false,
    });
    expect(warnings).toEqual([]);
  });

  it('lets typed options override the environment', () => {
    const config = parseTracingConfig(
      { serviceName: 'opt', queue: 'q2', maxBufferedSpans: 7, encoding: 'json', compression: 'gzip', resourceAttributes: { team: 'option', tier: 1 } },
      {
        OTEL_SERVICE_NAME: 'env',
        OTEL_RESOURCE_ATTRIBUTES: 'team=env,region=eu',
        TRACEHOUSE_QUEUE: 'q1',
        TRACEHOUSE_MAX_BUFFERED_SPANS: '9',
        TRACEHOUSE_ENCODING: 'proto3',
        TRACEHOUSE_COMPRESSION: 'none',
      },
    );
    expect(config.serviceName).toBe('opt');
    expect(config.resourceAttributes).toEqual({ team: 'option', region: 'eu', tier: 1 });
    expect(config.queue).toBe('q2');
    expect(config.maxBufferedSpans).toBe(7);
    expect(config.encoding).toBe('json');
    expect(config.compression).toBe('gzip');
  });

  it('takes a service.name among the typed resource attributes over OTEL_SERVICE_NAME, and serviceName over both', () => {
    const env = { OTEL_SERVICE_NAME: 'env', OTEL_RESOURCE_ATTRIBUTES: 'service.name=env-attribute' };
    expect(parseTracingConfig({}, env).serviceName).toBe('env');
    expect(parseTracingConfig({ resourceAttributes: { 'service.name': 'typed' } }, env).serviceName).toBe('typed');
    expect(parseTracingConfig({ serviceName: 'option', resourceAttributes: { 'service.name': 'typed' } }, env).serviceName).toBe('option');
  });

  describe('OTEL_SDK_DISABLED', () => {
    it.each(['true', 'TRUE', ' True '])('%j disables, and nothing else is read or checked', (value) => {
      const config = parseTracingConfig(
        {},
        {
          OTEL_SDK_DISABLED: value,
          TRACEHOUSE_RABBITMQ_URL: 'http://not-amqp',
          TRACEHOUSE_MAX_BUFFERED_SPANS: 'many',
          OTEL_RESOURCE_ATTRIBUTES: 'k=a=b',
          OTEL_SERVICE_NAME: 'ignored',
        },
      );
      expect(config).toEqual({ ...DEFAULTS, disabled: true });
      expect(Object.isFrozen(config)).toBe(true);
      expect(warnings).toEqual([]);
    });

    it('as an option it also disables before any other option is checked', () => {
      expect(parseTracingConfig({ disabled: true, rabbitmqUrl: 'nope', maxBufferedSpans: -1 }, {}).disabled).toBe(true);
    });

    it.each(['1', 'yes', 'on', 'enabled'])('%j is not "true": tracing runs, with a warning naming the variable', (value) => {
      expect(parseTracingConfig({}, { OTEL_SDK_DISABLED: value }).disabled).toBe(false);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('OTEL_SDK_DISABLED');
      expect(warnings[0]).toContain(JSON.stringify(value));
    });

    it('the option wins over the variable', () => {
      expect(parseTracingConfig({ disabled: false }, { OTEL_SDK_DISABLED: 'true' }).disabled).toBe(false);
      expect(parseTracingConfig({ disabled: true }, { OTEL_SDK_DISABLED: 'false' }).disabled).toBe(true);
    });
  });

  it.each([
    [{ OTEL_BSP_SCHEDULE_DELAY: 'soon' }, 'OTEL_BSP_SCHEDULE_DELAY', { scheduledDelayMillis: 5000 }],
    [{ OTEL_BSP_EXPORT_TIMEOUT: '0' }, 'OTEL_BSP_EXPORT_TIMEOUT', { exportTimeoutMillis: 30000 }],
    [{ OTEL_BSP_MAX_QUEUE_SIZE: '-5' }, 'OTEL_BSP_MAX_QUEUE_SIZE', { maxQueueSize: 2048 }],
    [
      { OTEL_BSP_MAX_QUEUE_SIZE: '10', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '20' },
      'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
      { maxQueueSize: 10, maxExportBatchSize: 10 },
    ],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'team=payments,oops' }, 'OTEL_RESOURCE_ATTRIBUTES', { resourceAttributes: {} }],
    [{ OTEL_BSP_SCHEDULE_DELAY: String(2 ** 31) }, 'OTEL_BSP_SCHEDULE_DELAY', { scheduledDelayMillis: 5000 }],
    // This package exports to RabbitMQ only: another exporter named is not silently "started".
    [{ OTEL_TRACES_EXPORTER: 'otlp' }, 'OTEL_TRACES_EXPORTER', { tracesExporter: 'rabbitmq' }],
    [{ OTEL_TRACES_EXPORTER: 'console,rabbitmq' }, 'OTEL_TRACES_EXPORTER', { tracesExporter: 'rabbitmq' }],
    [{ OTEL_TRACES_EXPORTER: 'none,otlp' }, 'OTEL_TRACES_EXPORTER', { tracesExporter: 'rabbitmq' }],
  ])('ignores the bad OTEL_* value %o with a warning naming it, and uses the default', (env, variable, expected) => {
    const config = parseTracingConfig({}, env);
    expect(config).toMatchObject(expected);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(variable);
    expect(warnings[0]).toContain('ignored');
  });

  it('accepts the OTEL_BSP_* values the specification allows, up to 2^31 - 1', () => {
    const config = parseTracingConfig(
      {},
      { OTEL_BSP_SCHEDULE_DELAY: '900000', OTEL_BSP_EXPORT_TIMEOUT: '700000', OTEL_BSP_MAX_QUEUE_SIZE: String(2 ** 31 - 1) },
    );
    expect(config).toMatchObject({ scheduledDelayMillis: 900_000, exportTimeoutMillis: 700_000, maxQueueSize: 2 ** 31 - 1 });
    expect(warnings).toEqual([]);
  });

  it.each([
    ['none', 'none'],
    [' NONE ', 'none'],
    ['none,none', 'none'],
    ['rabbitmq', 'rabbitmq'],
    ['', 'rabbitmq'],
  ])('OTEL_TRACES_EXPORTER=%j: %s, silently', (value, expected) => {
    expect(parseTracingConfig({}, { OTEL_TRACES_EXPORTER: value }).tracesExporter).toBe(expected);
    expect(warnings).toEqual([]);
  });

  describe('OTEL_RESOURCE_ATTRIBUTES', () => {
    // The SDK's own parser (EnvDetector): on any error it discards the whole variable.
    const sdkParse = (raw: string): Record<string, string> | undefined => {
      try {
        return (envDetector as unknown as { _parseResourceAttributes(raw: string): Record<string, string> })._parseResourceAttributes(raw);
      } catch {
        return undefined;
      }
    };

    const long = (text: string): string => (text.length > 40 ? `${text.slice(0, 12)}...(${text.length} chars)` : text);
    it.each(
      [
        'team=payments, region=eu%2Dwest,',
        'a=1,a=2',
        'k=v%2Cw%3Dx',
        'k=',
        'k=50%25',
        'ключ=значение',
        '%6B%65%79=value',
        `k=${'%41'.repeat(255)}`,
        `${'k'.repeat(255)}=v`,
        ' , ',
        // Each of these makes the SDK discard the variable.
        'k=a=b',
        'team=payments,oops',
        '=v',
        ' =v',
        'k=50%',
        '%E0%A4%A=v',
        'k=%E0%A4%A',
        `${'k'.repeat(256)}=v`,
        `k=${'v'.repeat(256)}`,
        `k=${'%41'.repeat(256)}`,
      ].map((raw) => [long(raw), raw]),
    )('%j: the same attributes as the SDK, or a warning where the SDK discards it', (_label, raw) => {
      const expected = sdkParse(raw);
      const config = parseTracingConfig({}, { OTEL_RESOURCE_ATTRIBUTES: raw });
      expect(config.resourceAttributes).toEqual(expected ?? {});
      if (expected === undefined) {
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/OTEL_RESOURCE_ATTRIBUTES: got .* ignored/);
      } else {
        expect(warnings).toEqual([]);
      }
    });

    it('the cases above include both outcomes', () => {
      expect(sdkParse('k=a=b')).toBeUndefined();
      expect(sdkParse('k=v')).toEqual({ k: 'v' });
    });
  });

  it.each([
    [{ TRACEHOUSE_RABBITMQ_URL: 'http://rabbit' }, 'TRACEHOUSE_RABBITMQ_URL', 'amqp://'],
    [{ TRACEHOUSE_ENCODING: 'thrift' }, 'TRACEHOUSE_ENCODING', '"json" or "proto3"'],
    [{ TRACEHOUSE_COMPRESSION: 'zstd' }, 'TRACEHOUSE_COMPRESSION', '"gzip" or "none"'],
    [{ TRACEHOUSE_MAX_MESSAGE_BYTES: '10' }, 'TRACEHOUSE_MAX_MESSAGE_BYTES', 'an integer from 1024'],
    [{ TRACEHOUSE_MAX_BUFFERED_SPANS: 'many' }, 'TRACEHOUSE_MAX_BUFFERED_SPANS', 'an integer from 1'],
    [{ TRACEHOUSE_QUEUE: 'q'.repeat(300) }, 'TRACEHOUSE_QUEUE', '1 to 255 bytes'],
  ])('rejects %o naming the variable and what it accepts', (env, variable, accepts) => {
    const error = configError(() => parseTracingConfig({}, env));
    expect(error).toMatchObject({ code: 'config_invalid', variable });
    expect(error?.message).toContain(variable);
    expect(error?.message).toContain(accepts);
  });

  it('rejects bad options naming the option', () => {
    expect(() => parseTracingConfig({ maxBufferedSpans: 0 }, {})).toThrow(/option maxBufferedSpans/);
    expect(() => parseTracingConfig({ rabbitmqUrl: 'nope' }, {})).toThrow(/option rabbitmqUrl/);
    expect(() => parseTracingConfig({ serviceName: ' ' }, {})).toThrow(/option serviceName/);
    expect(() => parseTracingConfig({ maxQueueSize: 10, maxExportBatchSize: 20 }, {})).toThrow(/option maxExportBatchSize/);
    const attributes = { ok: 'yes', bad: { nested: true } } as unknown as Record<string, string>;
    expect(configError(() => parseTracingConfig({ resourceAttributes: attributes }, {}))?.variable).toBe('option resourceAttributes["bad"]');
    expect(() => parseTracingConfig({ disabled: 'yes' as unknown as boolean }, {})).toThrow(/option disabled/);
    expect(() => parseTracingConfig({ encoding: 'thrift' as 'json' }, {})).toThrow(/option encoding: got "thrift", expected "json" or "proto3"/);
    expect(() => parseTracingConfig({ compression: 'br' as 'gzip' }, {})).toThrow(/option compression: got "br", expected "gzip" or "none"/);
  });
});
