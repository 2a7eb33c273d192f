import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_MESSAGE_BYTES, TracingConfigError, parseTracingConfig } from './config.js';

describe('parseTracingConfig', () => {
  it('uses the DESIGN.md defaults and freezes the result', () => {
    const config = parseTracingConfig({}, {});
    expect(config).toMatchObject({
      serviceName: undefined,
      rabbitmqUrl: 'amqp://guest:guest@127.0.0.1:5672',
      queue: 'zipkin',
      encoding: 'json',
      maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
      scheduledDelayMillis: 5000,
      exportTimeoutMillis: 30000,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      disabled: false,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads OTEL_* and TRACEHOUSE_* variables', () => {
    const config = parseTracingConfig(
      {},
      {
        OTEL_SERVICE_NAME: 'billing',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        OTEL_BSP_EXPORT_TIMEOUT: '1000',
        OTEL_BSP_MAX_QUEUE_SIZE: '100',
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '50',
        OTEL_SDK_DISABLED: 'TRUE',
        TRACEHOUSE_RABBITMQ_URL: 'amqps://u:p@rabbit:5671/vhost',
        TRACEHOUSE_QUEUE: 'spans',
        TRACEHOUSE_ENCODING: 'proto3',
        TRACEHOUSE_MAX_MESSAGE_BYTES: '65536',
        TRACEHOUSE_MAX_BUFFERED_SPANS: '1000',
        TRACEHOUSE_SHUTDOWN_TIMEOUT_MS: '2500',
      },
    );
    expect(config).toEqual({
      serviceName: 'billing',
      rabbitmqUrl: 'amqps://u:p@rabbit:5671/vhost',
      queue: 'spans',
      encoding: 'proto3',
      maxMessageBytes: 65536,
      maxBufferedSpans: 1000,
      shutdownTimeoutMillis: 2500,
      scheduledDelayMillis: 200,
      exportTimeoutMillis: 1000,
      maxQueueSize: 100,
      maxExportBatchSize: 50,
      disabled: true,
    });
  });

  it('accepts well-formed resource attributes (the SDK applies them)', () => {
    expect(() => parseTracingConfig({}, { OTEL_RESOURCE_ATTRIBUTES: 'team=payments, region=eu%2Dwest,' })).not.toThrow();
  });

  it('lets typed options override the environment', () => {
    const config = parseTracingConfig(
      { serviceName: 'opt', queue: 'q2', maxBufferedSpans: 7, encoding: 'json' },
      { OTEL_SERVICE_NAME: 'env', TRACEHOUSE_QUEUE: 'q1', TRACEHOUSE_MAX_BUFFERED_SPANS: '9', TRACEHOUSE_ENCODING: 'proto3' },
    );
    expect(config.serviceName).toBe('opt');
    expect(config.queue).toBe('q2');
    expect(config.maxBufferedSpans).toBe(7);
    expect(config.encoding).toBe('json');
  });

  it.each([
    [{ TRACEHOUSE_RABBITMQ_URL: 'http://rabbit' }, 'TRACEHOUSE_RABBITMQ_URL', 'amqp://'],
    [{ TRACEHOUSE_ENCODING: 'thrift' }, 'TRACEHOUSE_ENCODING', '"json" or "proto3"'],
    [{ OTEL_BSP_SCHEDULE_DELAY: 'soon' }, 'OTEL_BSP_SCHEDULE_DELAY', 'an integer'],
    [{ TRACEHOUSE_MAX_MESSAGE_BYTES: '10' }, 'TRACEHOUSE_MAX_MESSAGE_BYTES', 'an integer from 1024'],
    [{ OTEL_SDK_DISABLED: 'yes' }, 'OTEL_SDK_DISABLED', '"true" or "false"'],
    [{ TRACEHOUSE_QUEUE: 'q'.repeat(300) }, 'TRACEHOUSE_QUEUE', '1 to 255 bytes'],
    [{ OTEL_BSP_MAX_QUEUE_SIZE: '10', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '20' }, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'from 1 to 10'],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'team=payments,oops' }, 'OTEL_RESOURCE_ATTRIBUTES', 'key=value pairs'],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'team=%E0%A4%A' }, 'OTEL_RESOURCE_ATTRIBUTES', 'percent-encoded'],
  ])('rejects %o naming the variable and what it accepts', (env, variable, accepts) => {
    let error: unknown;
    try {
      parseTracingConfig({}, env);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TracingConfigError);
    expect(error).toMatchObject({ code: 'config_invalid', variable });
    expect((error as Error).message).toContain(variable);
    expect((error as Error).message).toContain(accepts);
  });

  it('rejects bad options naming the option', () => {
    expect(() => parseTracingConfig({ maxBufferedSpans: 0 }, {})).toThrow(/option maxBufferedSpans/);
    expect(() => parseTracingConfig({ rabbitmqUrl: 'nope' }, {})).toThrow(/option rabbitmqUrl/);
  });
});
