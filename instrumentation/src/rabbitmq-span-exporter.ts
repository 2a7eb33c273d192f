/**
 * An OpenTelemetry `SpanExporter` that publishes spans to RabbitMQ in Zipkin
 * v2 format, on the wire contract of DESIGN.md (default exchange, routing key
 * = queue, persistent messages, publisher confirms, many spans per message).
 *
 * It behaves like Zipkin's asynchronous reporters: `export()` converts and
 * encodes the spans into a bounded buffer and reports SUCCESS once they are
 * buffered; a background loop publishes the buffer as messages of at most
 * `maxMessageBytes` while the broker is there. The host is never hurt:
 * nothing throws, a full buffer drops and counts, a missing broker is retried
 * with backoff while the buffer keeps what it can, and `shutdown()` gives
 * delivery a bounded amount of time.
 */
import { context, diag, type MeterProvider, metrics } from '@opentelemetry/api';
import { ExportResultCode, suppressTracing, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { AmqpPublisher } from './amqp-publisher.js';
import {
  DEFAULT_MAX_BUFFERED_SPANS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_QUEUE,
  DEFAULT_RABBITMQ_URL,
  DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
  type WireEncoding,
} from './config.js';
import { ExporterCounters, registerExporterMetrics, type ExporterStats } from './exporter-stats.js';
import { SpanBuffer } from './span-buffer.js';
import { wireFormat, type WireFormat } from './wire-format.js';
import { ZipkinSpanConverter, type ZipkinConversionOptions } from './zipkin-conversion.js';

export interface RabbitMqSpanExporterOptions {
  /** Default `amqp://guest:guest@127.0.0.1:5672`. */
  rabbitmqUrl?: string;
  /** Default `zipkin`. */
  queue?: string;
  /** `json` (Zipkin JSON v2, default) or `proto3` (`ListOfSpans`). */
  encoding?: WireEncoding;
  /** Largest message body; default 500 000 bytes as Zipkin's senders. */
  maxMessageBytes?: number;
  /** Spans kept while the broker is slow or away; default 8192. */
  maxBufferedSpans?: number;
  /** Bytes kept while the broker is slow or away; default 32 MiB. */
  maxBufferedBytes?: number;
  /** Time `shutdown()` may spend delivering what is buffered; default 5000 ms. */
  shutdownTimeoutMillis?: number;
  /** Time `forceFlush()` waits for the buffer to empty; default 5000 ms. */
  flushTimeoutMillis?: number;
  /** Resource attributes copied to tags (see {@link ZipkinConversionOptions}). */
  resourceTags?: ZipkinConversionOptions['resourceTags'];
  /**
   * Where the exporter's own counters are registered. Default: the global
   * meter provider at the time of the first export (so that a provider the
   * app registers after constructing the exporter is used); `false` disables.
   */
  meterProvider?: MeterProvider | false;
  /** Connection name shown by the broker; default `tracehouse-instrumentation`. */
  connectionName?: string;
  /** First reconnect delay (doubling, with jitter); default 200 ms. */
  initialReconnectDelayMillis?: number;
  /** Longest reconnect delay; default 30 000 ms. */
  maxReconnectDelayMillis?: number;
  /** TCP + AMQP handshake timeout; default 5000 ms. */
  connectTimeoutMillis?: number;
}

/** Spans converted per turn of the event loop, so a large batch never blocks it for long. */
const CONVERSION_CHUNK = 128;

const logger = diag.createComponentLogger({ namespace: '@tracehouse/instrumentation/exporter' });

/** A timer as a promise; `keepAlive` lets it hold the process open (only for bounded shutdown work). */
function timeout(millis: number, keepAlive = false): { promise: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, millis);
    if (!keepAlive) timer.unref();
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

export class RabbitMqSpanExporter implements SpanExporter {
  readonly #converter: ZipkinSpanConverter;
  readonly #format: WireFormat;
  readonly #buffer: SpanBuffer;
  readonly #publisher: AmqpPublisher;
  readonly #counters = new ExporterCounters();
  readonly #maxMessageBytes: number;
  readonly #shutdownTimeoutMillis: number;
  readonly #flushTimeoutMillis: number;
  #meterProvider: MeterProvider | false | undefined;
  #started = false;
  #shutdown: Promise<void> | undefined;
  #draining = false;
  #drainScheduled = false;
  /** Bumped when the buffer is emptied by force, so an in-flight publish does not remove newer spans. */
  #epoch = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(options: RabbitMqSpanExporterOptions = {}) {
    this.#converter = new ZipkinSpanConverter({ resourceTags: options.resourceTags });
    this.#format = wireFormat(options.encoding ?? 'json');
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#buffer = new SpanBuffer({
      maxSpans: options.maxBufferedSpans ?? DEFAULT_MAX_BUFFERED_SPANS,
      maxBytes: options.maxBufferedBytes ?? 32 * 1024 * 1024,
    });
    this.#shutdownTimeoutMillis = options.shutdownTimeoutMillis ?? DEFAULT_SHUTDOWN_TIMEOUT_MILLIS;
    this.#flushTimeoutMillis = options.flushTimeoutMillis ?? 5000;
    this.#meterProvider = options.meterProvider;
    this.#publisher = new AmqpPublisher({
      url: options.rabbitmqUrl ?? DEFAULT_RABBITMQ_URL,
      queue: options.queue ?? DEFAULT_QUEUE,
      connectionName: options.connectionName ?? 'tracehouse-instrumentation',
      initialReconnectDelayMillis: options.initialReconnectDelayMillis ?? 200,
      maxReconnectDelayMillis: options.maxReconnectDelayMillis ?? 30_000,
      connectTimeoutMillis: options.connectTimeoutMillis ?? 5000,
      onReady: () => this.#scheduleDrain(),
    });
  }

  /** Connects to the broker now rather than on the first export. Never throws. */
  start(): void {
    if (this.#started || this.#shutdown !== undefined) return;
    this.#started = true;
    try {
      if (this.#meterProvider !== false) {
        registerExporterMetrics(this.#meterProvider ?? metrics.getMeterProvider(), () => this.stats());
      }
    } catch (error) {
      logger.warn('could not register exporter metrics', error);
    }
    this.#publisher.start();
  }

  /** A snapshot of the exporter's counters. */
  stats(): ExporterStats {
    const c = this.#counters;
    return {
      spansExported: c.spansExported,
      spansDropped: { ...c.dropped },
      messagesPublished: c.messagesPublished,
      publishFailures: c.publishFailures,
      bufferedSpans: this.#buffer.length,
      bufferedBytes: this.#buffer.bytes,
      connected: this.#publisher.ready,
    };
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const done = (result: ExportResult): void => {
      try {
        resultCallback(result);
      } catch (error) {
        logger.error('export result callback threw', error);
      }
    };
    if (this.#shutdown !== undefined) {
      this.#counters.drop('shutdown', spans.length);
      done({ code: ExportResultCode.FAILED, error: new Error('RabbitMqSpanExporter is shut down') });
      return;
    }
    this.start();
    this.#accept(spans, 0, 0, done);
  }

  /** Converts and buffers `spans[start...]` a chunk per turn, then reports. */
  #accept(spans: ReadableSpan[], start: number, droppedSoFar: number, done: (result: ExportResult) => void): void {
    let dropped = droppedSoFar;
    const end = Math.min(spans.length, start + CONVERSION_CHUNK);
    for (let i = start; i < end; i++) {
      if (!this.#bufferSpan(spans[i] as ReadableSpan)) dropped++;
    }
    if (end < spans.length) {
      setImmediate(() => this.#accept(spans, end, dropped, done));
      return;
    }
    this.#scheduleDrain();
    if (dropped === 0) done({ code: ExportResultCode.SUCCESS });
    else done({ code: ExportResultCode.FAILED, error: new Error(`${dropped} of ${spans.length} spans dropped`) });
  }

  #bufferSpan(span: ReadableSpan): boolean {
    let piece: Buffer;
    try {
      piece = this.#format.encodeSpan(this.#converter.convert(span));
    } catch (error) {
      this.#counters.drop('conversion_error');
      logger.warn('span could not be converted', error);
      return false;
    }
    if (this.#format.messageBytes(1, piece.length) > this.#maxMessageBytes) {
      this.#counters.drop('too_large');
      return false;
    }
    if (!this.#buffer.offer(piece)) {
      this.#counters.drop('buffer_full');
      return false;
    }
    return true;
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled || this.#draining) return;
    this.#drainScheduled = true;
    // setImmediate coalesces spans exported in the same turn into one message.
    setImmediate(() => {
      this.#drainScheduled = false;
      context.with(suppressTracing(context.active()), () => void this.#drain());
    });
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#buffer.length > 0 && this.#publisher.ready) {
        const { pieces, pieceBytes } = this.#buffer.peek(this.#maxMessageBytes, this.#format.messageBytes);
        const epoch = this.#epoch;
        const body = this.#format.frame(pieces, pieceBytes);
        try {
          await this.#publisher.publish(body);
        } catch (error) {
          this.#counters.publishFailures++;
          logger.debug('publish failed, spans stay buffered', error instanceof Error ? error.message : error);
          break;
        }
        if (epoch === this.#epoch) this.#buffer.remove(pieces.length);
        this.#counters.spansExported += pieces.length;
        this.#counters.messagesPublished++;
      }
    } catch (error) {
      logger.error('unexpected error while publishing', error);
    } finally {
      this.#draining = false;
      this.#wakeIdleWaiters();
    }
    // Spans buffered while the last publish was in flight.
    if (this.#buffer.length > 0 && this.#publisher.ready) this.#scheduleDrain();
  }

  #wakeIdleWaiters(): void {
    if (this.#buffer.length > 0 || this.#draining) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves true once the buffer is empty, false if `millis` pass first. */
  async #waitUntilEmpty(millis: number, keepAlive = false): Promise<boolean> {
    if (this.#buffer.length === 0 && !this.#draining) return true;
    const limit = timeout(millis, keepAlive);
    let emptied = false;
    const wait = new Promise<void>((resolve) => {
      this.#idleWaiters.push(() => {
        emptied = true;
        resolve();
      });
    });
    this.#scheduleDrain();
    await Promise.race([wait, limit.promise]);
    limit.cancel();
    return emptied || (this.#buffer.length === 0 && !this.#draining);
  }

  /** Waits (bounded by `flushTimeoutMillis`) for buffered spans to be confirmed. Never rejects. */
  async forceFlush(): Promise<void> {
    if (this.#shutdown !== undefined) return this.#shutdown;
    if (!(await this.#waitUntilEmpty(this.#flushTimeoutMillis))) {
      logger.debug(`forceFlush: ${this.#buffer.length} spans still buffered after ${this.#flushTimeoutMillis} ms`);
    }
  }

  /**
   * Delivers what is buffered if the broker is reachable within
   * `shutdownTimeoutMillis`, counts the rest as dropped (`shutdown`), and
   * closes the connection. Runs once; never rejects.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#doShutdown();
    return this.#shutdown;
  }

  async #doShutdown(): Promise<void> {
    try {
      const deadline = Date.now() + this.#shutdownTimeoutMillis;
      if (this.#buffer.length > 0) {
        this.#publisher.connectNow();
        // Delivering buffered spans is worth keeping the process up for, within the timeout.
        this.#publisher.keepProcessAlive(true);
        await this.#waitUntilEmpty(this.#shutdownTimeoutMillis, true);
      }
      const left = this.#buffer.clear();
      this.#epoch++;
      if (left > 0) {
        this.#counters.drop('shutdown', left);
        logger.warn(`${left} spans dropped: broker not reachable before the shutdown timeout`);
      }
      await this.#publisher.close(Math.max(100, Math.min(1000, deadline - Date.now())));
    } catch (error) {
      logger.error('shutdown failed', error);
    }
  }
}
