// Public surface of @tracehouse/collector.
export { Collector } from './collector.js';
export type { CollectorOptions, CollectorStore } from './collector.js';
export { parseConfig, ConfigError, CONFIG_HELP } from './config.js';
export type { CollectorConfig, QueueType, LogLevel } from './config.js';
export { Batcher } from './batcher.js';
export type { Batch, BatcherOptions } from './batcher.js';
export { AckTracker } from './ack-tracker.js';
export type { AckPlan } from './ack-tracker.js';
export {
  REASON_HEADER,
  ERROR_HEADER,
  QUEUE_HEADER,
  COLLECTOR_HEADER,
  TIME_HEADER,
} from './dead-letter.js';
export type { ReadinessReport } from './admin-server.js';
