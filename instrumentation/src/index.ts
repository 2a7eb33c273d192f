export { RabbitMqSpanExporter } from './rabbitmq-span-exporter.js';
export type { RabbitMqSpanExporterOptions } from './rabbitmq-span-exporter.js';
export { startTracing } from './start-tracing.js';
export type { StartTracingOptions, TracingHandle } from './start-tracing.js';
export {
  parseTracingConfig,
  TracingConfigError,
  DEFAULT_RABBITMQ_URL,
  DEFAULT_QUEUE,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_BUFFERED_SPANS,
  DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
} from './config.js';
export type { BodyCompression, TracingConfig, TracingOptions, WireEncoding } from './config.js';
export { ZipkinSpanConverter, attributeToTag, DEFAULT_RESOURCE_TAG_KEYS } from './zipkin-conversion.js';
export type { ZipkinConversionOptions } from './zipkin-conversion.js';
export { DROP_REASONS, METER_NAME } from './exporter-stats.js';
export type { DropReason, ExporterStats } from './exporter-stats.js';
