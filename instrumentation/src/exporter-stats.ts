/**
 * The exporter's own counters, readable by the app as a plain object and
 * exposed through the OpenTelemetry metrics API as observable counters.
 */
import type { MeterProvider } from '@opentelemetry/api';
import { VERSION } from './version.js';

export type DropReason =
  /** The buffer held its maximum of spans or bytes (broker away or too slow). */
  | 'buffer_full'
  /** One span alone encodes larger than the maximum message size. */
  | 'too_large'
  /** The span could not be converted or encoded (a bug or a hostile attribute); logged through diag. */
  | 'conversion_error'
  /** Exported after shutdown, or still buffered when the shutdown timeout ran out. */
  | 'shutdown'
  /** The broker refused the message carrying them for good, 5 times, each time published alone (over its size limit, no write permission); logged through diag. */
  | 'rejected';

export const DROP_REASONS: readonly DropReason[] = ['buffer_full', 'too_large', 'conversion_error', 'shutdown', 'rejected'];

export interface ExporterStats {
  /** Spans the broker confirmed. */
  readonly spansExported: number;
  /** Spans given up, by reason. */
  readonly spansDropped: Readonly<Record<DropReason, number>>;
  /** Messages the broker confirmed. */
  readonly messagesPublished: number;
  /** Publish attempts that failed (not connected mid-publish, nack, connection lost); their spans stay buffered. */
  readonly publishFailures: number;
  /** Spans waiting in the buffer now. */
  readonly bufferedSpans: number;
  /** Bytes waiting in the buffer now. */
  readonly bufferedBytes: number;
  /** Whether the exporter currently holds a usable broker connection. */
  readonly connected: boolean;
}

export class ExporterCounters {
  spansExported = 0;
  messagesPublished = 0;
  publishFailures = 0;
  readonly dropped: Record<DropReason, number> = { buffer_full: 0, too_large: 0, conversion_error: 0, shutdown: 0, rejected: 0 };

  drop(reason: DropReason, count = 1): void {
    this.dropped[reason] += count;
  }
}

export const METER_NAME = '@tracehouse/instrumentation';

/**
 * Registers observable counters on `meterProvider`:
 * `tracehouse.exporter.spans.exported`, `tracehouse.exporter.spans.dropped`
 * (attribute `reason`), `tracehouse.exporter.messages.published`,
 * `tracehouse.exporter.publish.failures`, and the gauge
 * `tracehouse.exporter.buffer.spans`.
 */
export function registerExporterMetrics(meterProvider: MeterProvider, read: () => ExporterStats): void {
  const meter = meterProvider.getMeter(METER_NAME, VERSION);
  const exported = meter.createObservableCounter('tracehouse.exporter.spans.exported', {
    description: 'Spans the broker confirmed',
    unit: '{span}',
  });
  const dropped = meter.createObservableCounter('tracehouse.exporter.spans.dropped', {
    description: 'Spans the exporter gave up, by reason',
    unit: '{span}',
  });
  const published = meter.createObservableCounter('tracehouse.exporter.messages.published', {
    description: 'Messages the broker confirmed',
    unit: '{message}',
  });
  const failures = meter.createObservableCounter('tracehouse.exporter.publish.failures', {
    description: 'Failed publish attempts (their spans stay buffered)',
    unit: '{message}',
  });
  const buffered = meter.createObservableGauge('tracehouse.exporter.buffer.spans', {
    description: 'Spans waiting for the broker',
    unit: '{span}',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const stats = read();
      result.observe(exported, stats.spansExported);
      for (const reason of DROP_REASONS) result.observe(dropped, stats.spansDropped[reason], { reason });
      result.observe(published, stats.messagesPublished);
      result.observe(failures, stats.publishFailures);
      result.observe(buffered, stats.bufferedSpans);
    },
    [exported, dropped, published, failures, buffered],
  );
}
