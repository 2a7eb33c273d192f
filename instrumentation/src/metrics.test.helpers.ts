// Shared by the unit tests: a metric reader the test collects from on demand.
import { AggregationTemporality, MetricReader } from '@opentelemetry/sdk-metrics';

/** Cumulative readings, taken only when the test calls `collect()`. */
export class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}
