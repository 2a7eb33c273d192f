/** The collector's Prometheus metrics, on a registry of its own. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface CollectorMetrics {
  readonly registry: Registry;
  readonly messagesConsumed: Counter;
  readonly messagesAcked: Counter;
  readonly messagesDeadLettered: Counter<'reason'>;
  readonly spansStored: Counter;
  readonly spansDropped: Counter<'reason'>;
  readonly batchSpans: Histogram;
  readonly batchMessages: Histogram;
  readonly insertSeconds: Histogram<'outcome'>;
  readonly insertRetries: Counter;
  readonly inflightMessages: Gauge;
  readonly pendingBatches: Gauge;
  readonly pendingBytes: Gauge;
  readonly consumerPauses: Counter;
  readonly messagesRequeued: Counter;
  readonly up: Gauge<'dependency'>;
  readonly reconnects: Counter;
}

export function createMetrics(o: { defaultMetrics?: boolean } = {}): CollectorMetrics {
  const registry = new Registry();
  if (o.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'tracehouse_collector_' });
  const registers = [registry];
  return {
    registry,
    messagesConsumed: new Counter({
      name: 'tracehouse_collector_messages_consumed_total',
      help: 'Messages received from the span queue.',
      registers,
    }),
    messagesAcked: new Counter({
      name: 'tracehouse_collector_messages_acked_total',
      help: 'Messages acked after their spans were committed (or they were dead-lettered).',
      registers,
    }),
    messagesDeadLettered: new Counter({
      name: 'tracehouse_collector_messages_dead_lettered_total',
      help: 'Messages published to the dead-letter queue, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    spansStored: new Counter({
      name: 'tracehouse_collector_spans_stored_total',
      help: 'Spans committed to ClickHouse.',
      registers,
    }),
    spansDropped: new Counter({
      name: 'tracehouse_collector_spans_dropped_total',
      help: 'Invalid spans dropped from otherwise good messages, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    batchSpans: new Histogram({
      name: 'tracehouse_collector_batch_spans',
      help: 'Spans per insert.',
      buckets: [1, 10, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000],
      registers,
    }),
    batchMessages: new Histogram({
      name: 'tracehouse_collector_batch_messages',
      help: 'Messages per insert.',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000],
      registers,
    }),
    insertSeconds: new Histogram({
      name: 'tracehouse_collector_insert_duration_seconds',
      help: 'Time for one insert into ClickHouse, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    insertRetries: new Counter({
      name: 'tracehouse_collector_insert_retries_total',
      help: 'Inserts retried after a failure.',
      registers,
    }),
    inflightMessages: new Gauge({
      name: 'tracehouse_collector_inflight_messages',
      help: 'Messages received and not yet acked.',
      registers,
    }),
    pendingBatches: new Gauge({
      name: 'tracehouse_collector_pending_batches',
      help: 'Closed batches waiting for or in an insert.',
      registers,
    }),
    pendingBytes: new Gauge({
      name: 'tracehouse_collector_pending_bytes',
      help: 'Bytes of rows of messages received and not yet acked; consumption pauses at TRACEHOUSE_COLLECTOR_MAX_PENDING_BYTES.',
      registers,
    }),
    consumerPauses: new Counter({
      name: 'tracehouse_collector_consumer_pauses_total',
      help: 'Times consumption paused because unacked messages held TRACEHOUSE_COLLECTOR_MAX_PENDING_BYTES of rows.',
      registers,
    }),
    messagesRequeued: new Counter({
      name: 'tracehouse_collector_messages_requeued_total',
      help: 'Messages handed back to the queue undecoded because unacked messages already held TRACEHOUSE_COLLECTOR_MAX_PENDING_BYTES of rows.',
      registers,
    }),
    up: new Gauge({
      name: 'tracehouse_collector_dependency_up',
      help: '1 when the dependency is in use: clickhouse answers; rabbitmq is connected and consuming (only once ClickHouse is open).',
      labelNames: ['dependency'],
      registers,
    }),
    reconnects: new Counter({
      name: 'tracehouse_collector_rabbitmq_reconnects_total',
      help: 'Connections to RabbitMQ established after the first.',
      registers,
    }),
  };
}
