/**
 * The collector: competing consumer on the span queue, batches into the span
 * store, acks only after the store committed, dead-letters what can never be
 * stored, reconnects to RabbitMQ, reports health and metrics.
 *
 * Delivery tags belong to one channel. Every (re)connection starts a new
 * generation; batches and acks of an older generation are never acked (the
 * broker redelivers those messages, and the store ignores the replay).
 */
import { hostname } from 'node:os';
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Message, type Options } from 'amqplib';
import { ClickHouseStore, StorageError, spansJsonOf, transcodeSpans, type EncodedSpans, type SpanWriter, type TranscodeResult } from '@tracehouse/storage';
import { pino, type Logger } from 'pino';
import { AckTracker } from './ack-tracker.js';
import { AdminServer, type ReadinessReport } from './admin-server.js';
import { backoffDelay, sleep } from './backoff.js';
import { Batcher } from './batcher.js';
import type { CollectorConfig } from './config.js';
import { deadLetterOptions, minimalDeadLetterOptions, publishIdOf, withPublishId, type DeadLetterInfo } from './dead-letter.js';
import { InsertPipeline } from './insert-pipeline.js';
import { createMetrics, type CollectorMetrics } from './metrics.js';
import { QueueRefusedError, setUpQueues } from './queue-setup.js';
import { withTimeout } from './with-timeout.js';

/** What the collector needs from the span store. ClickHouseStore satisfies it. */
export interface CollectorStore {
  readonly writer: Pick<SpanWriter, 'writeEncoded'>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
  enforceRetention?(now?: Date): Promise<unknown>;
}

export interface CollectorOptions {
  config: CollectorConfig;
  logger?: Logger;
  /** Opens the span store; defaults to ClickHouseStore.open with the config's ClickHouse settings. */
  openStore?: (config: CollectorConfig, logger: Logger) => Promise<CollectorStore>;
}

interface Token {
  readonly generation: number;
  readonly tag: number;
  readonly spanCount: number;
}

interface Session {
  readonly generation: number;
  /** Consumes and acks, never publishes: the broker does not block it during a resource alarm. */
  readonly connection: ChannelModel;
  /** Publishes dead letters only. A resource alarm blocks it, and only it: its dead letters wait, acks still flow. */
  readonly publisher: ChannelModel;
  /** On `connection`. */
  readonly channel: Channel;
  /** On `publisher`. */
  readonly confirm: ConfirmChannel;
  /** Publish ids of dead letters the broker returned as unroutable; their confirm follows. */
  readonly returned: Set<string>;
  consumerTag?: string;
  /** The prefetch the current consumer was started with. */
  prefetch?: number;
  /** Consumption cancelled by flow control (see adjustFlow) until the unacked messages' rows shrink. */
  paused?: boolean;
  /** A pause, resume or resize under way: one at a time, and stop() waits for it. */
  flowChange?: Promise<void>;
  /** The close of the whole session, started once by whichever path asks first (see closeSession). */
  closing?: Promise<void>;
}

const PING_INTERVAL_MS = 2_000;

export class Collector {
  readonly metrics: CollectorMetrics;
  private readonly config: CollectorConfig;
  private readonly logger: Logger;
  private readonly rootLogger: Logger;
  private readonly openStore: (config: CollectorConfig, logger: Logger) => Promise<CollectorStore>;
  private readonly admin: AdminServer;
  private readonly acks = new AckTracker();
  private readonly batcher: Batcher<Token, EncodedSpans>;
  private readonly pipeline: InsertPipeline<Token, EncodedSpans>;
  private readonly stopper = new AbortController();
  private readonly collectorId = `${hostname()}:${process.pid}`;

  private store: CollectorStore | undefined;
  /** Set once the shutdown has closed the store it had: a store opening later is closed by whoever opened it. */
  private storeReleased = false;
  private session: Session | undefined;
  private generation = 0;
  private rabbitmqUp = false;
  /** Bytes of rows of each unacked message of the current session, by delivery tag, and their sum (see adjustFlow). */
  private readonly heldBytes = new Map<number, number>();
  private pendingBytes = 0;
  /** Rows of a message, in bytes: the largest lately (it rises at once and decays slowly); sizes consumers' prefetch. */
  private recentMessageBytes = 0;
  private pingOk = false;
  private insertsFailing = false;
  private deadLettersInFlight = 0;
  private deadLettersPublished = 0;
  /** Connections that have closed: amqplib's close() of one never settles. */
  private readonly closedConnections = new WeakSet<ChannelModel>();
  private started = false;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private loops: Promise<void>[] = [];
  private finished: Promise<void> | undefined;
  private timers: NodeJS.Timeout[] = [];
  private adminPort = 0;

  constructor(o: CollectorOptions) {
    this.config = o.config;
    this.rootLogger = o.logger ?? pino({ level: o.config.logLevel });
    this.logger = this.rootLogger.child({ component: 'collector' });
    this.openStore = o.openStore ?? openClickHouseStore;
    this.metrics = createMetrics();
    this.admin = new AdminServer({
      host: this.config.adminHost,
      port: this.config.adminPort,
      registry: this.metrics.registry,
      readiness: () => this.readiness(),
    });
    this.batcher = new Batcher<Token, EncodedSpans>({
      maxSpans: this.config.batchSpans,
      maxMessages: this.config.batchMessages,
      maxAgeMs: this.config.batchAgeMs,
      onBatch: (batch) => this.pipeline.submit(batch),
    });
    this.pipeline = new InsertPipeline<Token, EncodedSpans>({
      sink: { write: (parts) => this.requireStore().writer.writeEncoded(parts) },
      concurrency: this.config.insertConcurrency,
      maxSpansPerInsert: this.config.insertMaxSpans,
      retry: { initialMs: this.config.retryInitialMs, maxMs: this.config.retryMaxMs },
      logger: this.logger,
      metrics: this.metrics,
      onCommitted: (tokens) => this.settle(tokens),
      onRejected: (token, part, error) => this.deadLetterSpans(token, part, error),
      onHealth: (ok) => {
        this.insertsFailing = !ok;
        this.updateUp();
      },
      // Their connection is gone: the broker delivers them again, to whichever replica.
      isStale: (tokens) => tokens.every((token) => token.generation !== this.session?.generation),
    });
    this.updateUp();
  }

  /** The admin server's port (the configured one, or the one picked for port 0). */
  get port(): number {
    return this.adminPort;
  }

  readiness(): ReadinessReport {
    const clickhouse = this.store !== undefined && this.pingOk && !this.insertsFailing;
    return {
      ready: this.rabbitmqUp && clickhouse && !this.stopping,
      rabbitmq: this.rabbitmqUp,
      clickhouse,
      stopping: this.stopping,
    };
  }

  /**
   * Starts the admin server, then connects to the store and RabbitMQ in the
   * background, retrying with backoff until both answer (a store error that
   * is not retryable stops the collector instead; see done()). Resolves once
   * the admin server listens; /ready says when spans flow.
   */
  async start(): Promise<void> {
    if (this.started) throw new Error('Collector.start: already started');
    this.started = true;
    this.adminPort = await this.admin.start();
    this.logger.info(
      {
        port: this.adminPort,
        queue: this.config.queue,
        batchSpans: this.config.batchSpans,
        batchMessages: this.config.batchMessages,
        batchAgeMs: this.config.batchAgeMs,
        prefetch: this.config.prefetch,
        insertConcurrency: this.config.insertConcurrency,
      },
      'collector starting',
    );
    const running = this.run();
    this.loops.push(running);
    this.finished = running.catch(async (error: unknown) => {
      await this.stop();
      throw error;
    });
    // Marks the rejection handled for callers that never ask done().
    this.finished.catch(() => undefined);
  }

  /**
   * Settles when the background work ends: resolves after stop(); rejects
   * when the collector gave up by itself (a span store that can never open,
   * a span queue RabbitMQ refuses to declare), once it has stopped.
   */
  done(): Promise<void> {
    return this.finished ?? Promise.reject(new Error('Collector.done: not started'));
  }

  /**
   * Graceful stop, bounded by shutdownTimeoutMs: cancel the consumer, write
   * and ack what was received, close RabbitMQ, the store and the admin server.
   * Messages that could not be written in time stay unacked for another replica.
   */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.updateUp();
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    const left = (): number => Math.max(0, deadline - Date.now());
    // Closing RabbitMQ and ending the loops come within the bound too: they get its last fifth
    // (at most 2 s), whatever the drain before them took.
    const closing = Math.min(2_000, Math.floor(this.config.shutdownTimeoutMs / 5));
    const leftToDrain = (): number => Math.max(0, deadline - closing - Date.now());
    this.logger.info('stopping: cancelling the consumer');
    const session = this.session;
    // A resume under way would otherwise leave a consumer that nobody cancels.
    if (session?.flowChange !== undefined) await withTimeout(session.flowChange, leftToDrain()).catch(() => undefined);
    if (session?.consumerTag !== undefined) {
      await withTimeout(session.channel.cancel(session.consumerTag), leftToDrain()).catch((error: unknown) =>
        this.logger.warn({ err: error }, 'could not cancel the consumer'),
      );
    }
    this.batcher.flush();
    const drained = await withTimeout(
      // In this order: the drain itself dead-letters what ClickHouse refuses, and
      // those publishes must be confirmed (and their messages acked) before the channels close.
      this.pipeline
        .drain()
        .then(() => this.deadLettersDrained())
        .then(() => true),
      leftToDrain(),
    ).catch(() => false);
    if (!drained) {
      this.logger.warn({ unacked: this.acks.size }, 'shutdown timeout: leaving unwritten messages to the broker');
    }
    this.pipeline.abort();
    this.stopper.abort();
    for (const timer of this.timers) clearInterval(timer);
    if (this.session !== undefined) await this.endSession(this.session, Math.max(left(), 50));
    await withTimeout(Promise.all(this.loops), Math.max(left(), 50)).catch(() => undefined);
    this.storeReleased = true;
    await this.store?.close().catch((error: unknown) => this.logger.warn({ err: error }, 'closing the store failed'));
    await this.admin.stop().catch(() => undefined);
    this.logger.info({ drained }, 'collector stopped');
  }

  private requireStore(): CollectorStore {
    if (this.store === undefined) throw new Error('span store not open');
    return this.store;
  }

  private updateUp(): void {
    const report = this.readiness();
    this.metrics.up.set({ dependency: 'rabbitmq' }, report.rabbitmq ? 1 : 0);
    this.metrics.up.set({ dependency: 'clickhouse' }, report.clickhouse ? 1 : 0);
  }

  // ---- background loops ----------------------------------------------------

  private async run(): Promise<void> {
    const signal = this.stopper.signal;
    for (let attempt = 1; this.store === undefined && !signal.aborted; attempt++) {
      try {
        this.store = await this.openStore(this.config, this.rootLogger);
        this.pingOk = true;
        this.updateUp();
      } catch (error) {
        // Bad settings, refused credentials or a schema it cannot migrate: retrying would only keep /health green forever.
        if (error instanceof StorageError && !error.retryable && !this.stopping) {
          const message = `cannot open the span store (${error.code}, not retryable): ${error.message}`;
          this.logger.error({ err: error }, `${message}; stopping`);
          throw new Error(message, { cause: error });
        }
        const delay = backoffDelay(attempt, { initialMs: this.config.reconnectInitialMs, maxMs: this.config.reconnectMaxMs });
        this.logger.warn({ err: error, retryInMs: delay }, 'cannot open the span store; retrying');
        await sleep(delay, signal);
      }
    }
    if (signal.aborted) {
      // A store that opened after the shutdown closed what it had: nobody else will close this one.
      if (this.storeReleased) await this.store?.close().catch(() => undefined);
      return;
    }
    this.schedule(PING_INTERVAL_MS, () => this.pingStore());
    if (typeof this.store?.enforceRetention === 'function') {
      this.schedule(this.config.retentionIntervalMs, () => this.enforceRetention());
      void this.enforceRetention();
    }
    await this.amqpLoop();
  }

  private schedule(ms: number, task: () => Promise<void>): void {
    let running = false;
    const timer = setInterval(() => {
      if (running || this.stopping) return;
      running = true;
      void task().finally(() => (running = false));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private async pingStore(): Promise<void> {
    const ok = await this.requireStore().ping().catch(() => false);
    if (ok !== this.pingOk) this.logger.info({ clickhouse: ok }, ok ? 'ClickHouse answers again' : 'ClickHouse does not answer');
    this.pingOk = ok;
    this.updateUp();
  }

  private async enforceRetention(): Promise<void> {
    try {
      const result = await this.store?.enforceRetention?.();
      this.logger.debug({ result }, 'retention enforced');
    } catch (error) {
      this.logger.warn({ err: error }, 'retention failed');
    }
  }

  private async amqpLoop(): Promise<void> {
    const signal = this.stopper.signal;
    let attempt = 0;
    let connectedBefore = false;
    while (!signal.aborted && !this.stopping) {
      try {
        const { closed, session } = await this.connect();
        // stop() ran while connecting and may have found no session to close: close it now.
        if (this.stopping) await this.endSession(session);
        if (connectedBefore) this.metrics.reconnects.inc();
        connectedBefore = true;
        attempt = 0;
        await closed;
        // One of the two closed: the other is no use alone.
        await this.endSession(session);
      } catch (error) {
        // Only connect() throws here, and it has closed what it opened.
        if (error instanceof QueueRefusedError && !this.stopping) {
          // The same declaration is refused every time: stop, as for a store that can never open.
          this.logger.error({ err: error }, `${error.message}; stopping`);
          throw error;
        }
        this.logger.warn({ err: error }, 'RabbitMQ connection failed');
      }
      this.dropSession();
      if (signal.aborted || this.stopping) break;
      attempt++;
      const delay = backoffDelay(attempt, { initialMs: this.config.reconnectInitialMs, maxMs: this.config.reconnectMaxMs });
      this.logger.info({ retryInMs: delay, attempt }, 'reconnecting to RabbitMQ');
      await sleep(delay, signal);
    }
  }

  private async openConnection(name: string): Promise<ChannelModel> {
    const model = await connect(this.config.rabbitmqUrl, {
      // Without it a peer that accepts the TCP connection and never answers
      // holds this attempt, and so the collector, forever.
      timeout: this.config.rabbitmqConnectTimeoutMs,
      clientProperties: { connection_name: name },
    });
    model.once('close', () => this.closedConnections.add(model));
    return model;
  }

  /**
   * Opens the session's two connections, sets up queues and the consumer;
   * resolves with a promise that settles when either connection closes.
   *
   * Two connections because during a resource alarm (memory, disk) the broker
   * stops reading every connection that publishes, and only those: one dead
   * letter published on the consuming connection would leave its acks unread
   * and its prefetch window shut for as long as the alarm lasts, which the
   * backlog it should drain may be causing.
   */
  private async connect(): Promise<{ closed: Promise<unknown>; session: Session }> {
    const name = `tracehouse-collector ${this.collectorId}`;
    const connection = await this.openConnection(name);
    connection.on('error', (error: Error) => this.logger.warn({ err: error }, 'RabbitMQ connection error'));
    connection.on('blocked', (reason: string) => this.logger.warn({ reason }, 'RabbitMQ blocked the connection'));
    let publisher: ChannelModel;
    try {
      publisher = await this.openConnection(`${name}-dead-letters`);
    } catch (error) {
      await this.closeConnection(connection, this.config.rabbitmqConnectTimeoutMs);
      throw error;
    }
    publisher.on('error', (error: Error) => this.logger.warn({ err: error }, 'RabbitMQ dead-letter connection error'));
    publisher.on('blocked', (reason: string) =>
      this.logger.warn({ reason }, 'RabbitMQ blocked the dead-letter connection; consumption goes on, poison messages stay unacked until it is unblocked'),
    );
    publisher.on('unblocked', () => this.logger.info('RabbitMQ unblocked the dead-letter connection'));
    const generation = ++this.generation;
    const closed = Promise.race([connection, publisher].map((model) => new Promise((resolve) => model.once('close', resolve))));
    let session: Session | undefined;
    try {
      // Declares and binds only: no publish, so it does not get this connection blocked.
      await setUpQueues(connection, { ...this.config, logger: this.logger });
      const channel = await connection.createChannel();
      const confirm = await publisher.createConfirmChannel();
      session = { generation, connection, publisher, channel, confirm, returned: new Set() };
      const current = session;
      this.session = current;
      // The broker sends basic.return before it confirms the same message.
      confirm.on('return', (message: Message) => {
        const id = publishIdOf(message.properties);
        if (id !== undefined) current.returned.add(id);
      });
      for (const ch of [channel, confirm]) {
        ch.on('error', (error: Error) => this.logger.warn({ err: error }, 'RabbitMQ channel error'));
        // A channel closed under us (not by stop) leaves the session unusable: start over.
        ch.on('close', () => {
          if (!this.stopping && this.session === current) void this.endSession(current);
        });
      }
      const prefetch = this.consumerPrefetch();
      await this.startConsumer(current, prefetch);
      this.rabbitmqUp = true;
      this.updateUp();
      this.logger.info({ queue: this.config.queue, prefetch, generation }, 'consuming');
      return { closed, session: current };
    } catch (error) {
      const bound = this.config.rabbitmqConnectTimeoutMs;
      // Once there is a session, stop() may be closing it too: the same close, never a second one.
      if (session !== undefined) await this.endSession(session);
      else await Promise.all([connection, publisher].map((model) => this.closeConnection(model, bound)));
      throw error;
    }
  }

  /** Starts consuming the span queue on the session's channel; resolves with the consumer tag. */
  private async consume(session: Session): Promise<string> {
    const reply = await session.channel.consume(
      this.config.queue,
      (message) => {
        try {
          this.onMessage(session, message);
        } catch (error) {
          // Never let a bug here reach amqplib's dispatcher; the message stays unacked.
          this.logger.error({ err: error }, 'failed to handle a delivery');
        }
      },
      { noAck: false },
    );
    return reply.consumerTag;
  }

  /**
   * Bounds the memory of unacked messages in bytes, which prefetch (a count)
   * does not: 600 messages of 4 MiB would be gigabytes of rows while ClickHouse
   * is away. RabbitMQ has no prefetch in bytes, and a new basic.qos does not
   * apply to a running consumer. So:
   * - once the rows reach maxPendingBytes the consumer is cancelled (the
   *   messages delivered before the broker saw it are still handled, and acked
   *   on the same channel); below half the bound a new consumer starts;
   * - every consumer's prefetch is what fits in half the bound at the size of
   *   the larger messages lately (consumerPrefetch), and when that size moves the
   *   consumer is replaced by one with a window twice as large or half as
   *   large: start the new one, then cancel the old one;
   * - a delivery arriving while the rows already reach the bound goes back to
   *   the queue undecoded (onMessage): deliveries the broker sent before it
   *   saw a cancel or a smaller window, or a whole first window on a backlog.
   */
  private adjustFlow(session: Session | undefined = this.session): void {
    if (session === undefined || session !== this.session || this.stopping || session.flowChange !== undefined) return;
    // A session being closed starts nothing new: its channel may be gone already.
    if (session.closing !== undefined) return;
    const bound = this.config.maxPendingBytes;
    const tag = session.consumerTag;
    let change: Promise<void> | undefined;
    if (!session.paused && tag !== undefined && this.pendingBytes >= bound) {
      session.paused = true;
      session.consumerTag = undefined;
      this.metrics.consumerPauses.inc();
      this.logger.info({ pendingBytes: this.pendingBytes, maxPendingBytes: bound }, 'unacked messages hold too many bytes; pausing consumption');
      change = session.channel.cancel(tag).then(() => undefined);
    } else if (session.paused && this.pendingBytes < bound / 2) {
      const window = this.consumerPrefetch();
      this.logger.info({ pendingBytes: this.pendingBytes, prefetch: window }, 'resuming consumption');
      change = this.startConsumer(session, window).then(() => {
        session.paused = false;
      });
    } else if (!session.paused && tag !== undefined && session.prefetch !== undefined) {
      const window = this.consumerPrefetch();
      if (window < session.prefetch * 2 && window * 2 > session.prefetch) return;
      this.logger.info({ recentMessageBytes: Math.round(this.recentMessageBytes), from: session.prefetch, prefetch: window }, 'resizing the prefetch');
      change = this.startConsumer(session, window).then(async () => {
        await session.channel.cancel(tag);
      });
    }
    if (change === undefined) return;
    session.flowChange = change.then(
      () => {
        session.flowChange = undefined;
        this.adjustFlow(session);
      },
      (error: unknown) => {
        session.flowChange = undefined;
        // The channel failed under the request (or refused it): start over, as for any
        // channel loss. Not adjustFlow again: that would ask the same channel again.
        this.logger.warn({ err: error }, 'could not pause, resume or resize consumption; reconnecting');
        if (!this.stopping && this.session === session) void this.endSession(session);
      },
    );
  }

  /** Starts the session's consumer with this prefetch (the previous one, if any, is the caller's to cancel). */
  private async startConsumer(session: Session, prefetch: number): Promise<void> {
    await session.channel.prefetch(prefetch);
    const tag = await this.consume(session);
    session.consumerTag = tag;
    session.prefetch = prefetch;
    // stop() began meanwhile and found no consumer to cancel, or only the old one: cancel this one.
    if (this.stopping) await session.channel.cancel(tag);
  }

  /**
   * The prefetch of a new consumer: what fits in half of maxPendingBytes at
   * the size of the larger messages lately, at most the configured one. Before
   * any message has been seen, the configured one: a small probe window would
   * let the first replica to widen take a whole backlog from the others, and
   * what arrives over the bound goes back to the queue anyway (onMessage).
   */
  private consumerPrefetch(): number {
    if (this.recentMessageBytes === 0) return this.config.prefetch;
    const fits = Math.floor(this.config.maxPendingBytes / 2 / this.recentMessageBytes);
    return Math.max(1, Math.min(this.config.prefetch, fits));
  }

  /** Counts a batched message's rows against maxPendingBytes. */
  private hold(tag: number, bytes: number): void {
    // Up at once, down slowly: a run of larger messages shrinks the window with the first of
    // them, and a mix of sizes keeps the window sized for the larger ones.
    this.recentMessageBytes =
      bytes >= this.recentMessageBytes ? bytes : this.recentMessageBytes + (bytes - this.recentMessageBytes) / 64;
    this.heldBytes.set(tag, bytes);
    this.pendingBytes += bytes;
    this.metrics.pendingBytes.set(this.pendingBytes);
    this.adjustFlow();
  }

  /** Releases acked messages' rows; a tag held by nothing (a dead letter's) releases nothing. */
  private release(tags: readonly number[]): void {
    for (const tag of tags) {
      const bytes = this.heldBytes.get(tag);
      if (bytes === undefined) continue;
      this.heldBytes.delete(tag);
      this.pendingBytes -= bytes;
    }
    this.metrics.pendingBytes.set(this.pendingBytes);
    this.adjustFlow();
  }

  /**
   * Closes a session (see closeSession); the amqp loop then starts over.
   * Bounded: a peer that stopped answering must not hold up the reconnect.
   */
  private async endSession(session: Session, timeoutMs = this.config.rabbitmqConnectTimeoutMs): Promise<void> {
    await withTimeout(this.closeSession(session, timeoutMs), timeoutMs).catch(() => undefined);
  }

  /**
   * Closes a session once, whichever path asks first (stop(), the amqp loop, a
   * closed channel, a cancelled consumer, a returned dead letter): amqplib
   * never answers a channel's close once its connection is closing, so a
   * second path closing a connection under the first one's channel close
   * would leave that close waiting out its timeout. Each channel closes before
   * its connection (that round trip has the broker read every ack sent on
   * it), and the two pairs side by side (a blocked dead-letter connection
   * must not hold up the consumer's). A channel whose connection has already
   * closed is not asked: that close would never settle either.
   */
  private closeSession(session: Session, timeoutMs: number): Promise<void> {
    const pairs: Array<[Channel, ChannelModel]> = [
      [session.channel, session.connection],
      [session.confirm, session.publisher],
    ];
    session.closing ??= Promise.all(
      pairs.map(async ([channel, model]) => {
        if (!this.closedConnections.has(model)) await withTimeout(channel.close(), timeoutMs).catch(() => undefined);
        await this.closeConnection(model, timeoutMs);
      }),
    ).then(() => undefined);
    return session.closing;
  }

  /** Closes a connection unless it has closed already; each is closed on one path only (closeSession, or connect() before there is a session). */
  private async closeConnection(model: ChannelModel, timeoutMs: number): Promise<void> {
    if (this.closedConnections.has(model)) return;
    await withTimeout(model.close(), timeoutMs).catch(() => undefined);
  }

  /** The connection is gone: everything unacked on it will be redelivered. */
  private dropSession(): void {
    if (this.session === undefined && !this.rabbitmqUp) return;
    const unacked = this.acks.size;
    this.session = undefined;
    this.rabbitmqUp = false;
    this.acks.reset();
    this.heldBytes.clear();
    this.pendingBytes = 0;
    this.metrics.pendingBytes.set(0);
    this.batcher.discard();
    // Batches still waiting for an insert slot would only write spans the
    // broker is about to redeliver; with ClickHouse down they would pile up
    // with every reconnect. Every queued batch belongs to the lost connection:
    // a new one has not started yet.
    this.pipeline.discardQueued();
    this.metrics.inflightMessages.set(0);
    this.updateUp();
    if (!this.stopping) this.logger.warn({ unacked }, 'RabbitMQ connection lost; unacked messages go back to the queue');
  }

  // ---- the hot path ----------------------------------------------------------

  private onMessage(session: Session, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (queue deleted, node down): start over.
      this.logger.warn({ queue: this.config.queue }, 'consumer cancelled by the broker; reconnecting');
      void this.endSession(session);
      return;
    }
    if (this.session !== session) return;
    if (this.pendingBytes >= this.config.maxPendingBytes) {
      // Over the byte bound: messages larger than the window was sized for, or deliveries
      // already under way when the pause was asked for. Handed back undecoded, a message
      // costs memory only while here, and the bound holds within one message.
      try {
        session.channel.nack(message, false, true);
        this.metrics.messagesRequeued.inc();
      } catch (error) {
        // The channel is gone: the broker redelivers it anyway.
        this.logger.debug({ err: error }, 'could not requeue a delivery over the byte bound');
      }
      this.adjustFlow(session);
      return;
    }
    const tag = message.fields.deliveryTag;
    this.acks.delivered(tag);
    this.metrics.messagesConsumed.inc();
    this.metrics.inflightMessages.set(this.acks.size);
    const body = message.content;
    const encoding = message.properties.contentEncoding as unknown;
    // Body → rows of span_ingest in one step: what encodeSpans(decodeSpans(body))
    // makes, but a JSON v2 body's clean spans are written from its bytes
    // without Span objects (storage's json-v2-transcoder.ts); proto3, JSON v1
    // and odd spans take decodeSpans and encodeSpans inside it. Encoded now,
    // the batch holds compact rows, not objects that would outlive
    // young-generation GC.
    let result: TranscodeResult;
    try {
      result = transcodeSpans(body, {
        maxBodyBytes: this.config.maxMessageBytes,
        ...(typeof encoding === 'string' ? { contentEncoding: encoding } : {}),
      });
    } catch (error) {
      // A decoder or encoder bug must not take the replica down: park the message.
      this.deadLetter(session, message, body, 'decode_error', errorText(error));
      return;
    }
    if (!result.ok) {
      this.deadLetter(session, message, body, result.reason, result.message);
      return;
    }
    for (const dropped of result.dropped) this.metrics.spansDropped.inc({ reason: dropped.reason });
    const encoded = result.encoded;
    if (encoded.count === 0 && result.dropped.length > 0) {
      const first = result.dropped[0]!;
      this.deadLetter(session, message, body, 'no_valid_spans', `all ${result.dropped.length} spans invalid; first: ${first.reason}: ${first.message}`);
      return;
    }
    this.batcher.add({ generation: session.generation, tag, spanCount: encoded.count }, encoded, encoded.count);
    this.hold(tag, encoded.rows.byteLength);
  }

  /** Acks messages whose spans are committed, as few acks as the channel allows. */
  private settle(tokens: readonly Token[]): void {
    const session = this.session;
    if (session === undefined) return;
    const tags: number[] = [];
    for (const token of tokens) if (token.generation === session.generation) tags.push(token.tag);
    if (tags.length === 0) return;
    const plan = this.acks.settle(tags);
    this.release(tags);
    this.logger.debug({ tags: tags.length, plan }, 'acking');
    try {
      if (plan.upTo !== undefined) session.channel.ack(ackable(plan.upTo), true);
      for (const tag of plan.singles) session.channel.ack(ackable(tag));
      this.metrics.messagesAcked.inc(tags.length);
    } catch (error) {
      // The channel closed between commit and ack: the broker redelivers, the store dedupes.
      this.logger.warn({ err: error }, 'ack failed');
    }
    this.metrics.inflightMessages.set(this.acks.size);
  }

  // ---- dead letters ----------------------------------------------------------

  private deadLetter(session: Session, message: ConsumeMessage, body: Buffer, reason: string, error: string): void {
    const info: DeadLetterInfo = { reason, error, queue: this.config.queue, collector: this.collectorId };
    const token: Token = { generation: session.generation, tag: message.fields.deliveryTag, spanCount: 0 };
    this.logger.warn({ reason, error, bytes: body.length, deliveryTag: token.tag }, 'dead-lettering message');
    try {
      this.publishDeadLetter(session, token, body, deadLetterOptions(message.properties, info), reason);
    } catch {
      try {
        // The original headers could not be encoded again (RangeError from amqplib): keep ours only.
        this.publishDeadLetter(session, token, body, minimalDeadLetterOptions(info), reason);
      } catch (error) {
        // The confirm channel is gone: the message stays unacked and comes back after the reconnect.
        this.logger.error({ err: error, reason }, 'could not dead-letter the message; leaving it unacked');
      }
    }
  }

  private deadLetterSpans(token: Token, part: EncodedSpans, error: unknown): void {
    const session = this.session;
    if (session === undefined || session.generation !== token.generation) return;
    const info: DeadLetterInfo = { reason: 'insert_rejected', error: errorText(error), queue: this.config.queue, collector: this.collectorId };
    this.logger.warn({ reason: info.reason, error: info.error, spans: part.count }, 'dead-lettering spans ClickHouse refused');
    try {
      this.publishDeadLetter(session, token, spansJsonOf([part]), minimalDeadLetterOptions(info), info.reason);
    } catch (publishError) {
      this.logger.error({ err: publishError }, 'could not dead-letter refused spans; leaving the message unacked');
    }
  }

  private publishDeadLetter(session: Session, token: Token, body: Buffer, options: Options.Publish, reason: string, attempt = 1): void {
    const settled = (): void => {
      this.deadLettersInFlight--;
      if (this.deadLettersInFlight === 0) for (const resolve of this.deadLetterWaiters.splice(0)) resolve();
    };
    this.deadLettersInFlight++;
    const publishId = `${this.collectorId}:${session.generation}:${++this.deadLettersPublished}`;
    try {
      session.confirm.publish(this.config.deadLetterExchange, this.config.queue, body, withPublishId(options, publishId), (error: unknown) => {
        const returned = session.returned.delete(publishId);
        if (error !== null && error !== undefined) {
          // The broker refused it (a full dead-letter queue with reject-publish)
          // or the channel went. Left unacked for good, the message would hold
          // a prefetch slot until the next reconnect, and enough of them stop
          // consumption: publish it again later, on this session only.
          if (this.stopping || this.session !== session) {
            this.logger.warn({ err: error, reason }, 'dead-letter publish not confirmed before the channel closed; the broker redelivers the message');
          } else {
            const delay = backoffDelay(attempt, { initialMs: this.config.retryInitialMs, maxMs: this.config.retryMaxMs });
            this.logger.error({ err: error, reason, attempt, retryInMs: delay }, 'dead-letter publish not confirmed; retrying it, the message stays unacked meanwhile');
            this.retryDeadLetter(session, token, body, options, reason, attempt + 1, delay);
          }
        } else if (returned) {
          // Confirmed, but routed to no queue: the dead-letter queue was deleted
          // or unbound. Acking now would lose the message. A new connection runs
          // the queue setup again, which declares and binds the queue, and the
          // broker redelivers the message meanwhile.
          if (this.stopping || this.session !== session) {
            this.logger.warn({ reason }, 'dead letter returned unroutable; the broker redelivers the message');
          } else {
            this.logger.error(
              { reason, exchange: this.config.deadLetterExchange, queue: this.config.deadLetterQueue },
              'dead letter returned unroutable (dead-letter queue missing or unbound); reconnecting to declare it, the message stays unacked',
            );
            void this.endSession(session);
          }
        } else {
          this.metrics.messagesDeadLettered.inc({ reason });
          this.settle([token]);
        }
        settled();
      });
    } catch (error) {
      settled();
      throw error;
    }
  }

  private retryDeadLetter(session: Session, token: Token, body: Buffer, options: Options.Publish, reason: string, attempt: number, delayMs: number): void {
    const timer = setTimeout(() => {
      // Stopping, or the channel is gone: the broker redelivers the message.
      if (this.stopping || this.session !== session) return;
      try {
        this.publishDeadLetter(session, token, body, options, reason, attempt);
      } catch (error) {
        this.logger.error({ err: error, reason }, 'could not dead-letter the message; leaving it unacked');
      }
    }, delayMs);
    timer.unref();
  }

  private readonly deadLetterWaiters: (() => void)[] = [];

  private deadLettersDrained(): Promise<void> {
    if (this.deadLettersInFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.deadLetterWaiters.push(resolve));
  }
}

async function openClickHouseStore(config: CollectorConfig, logger: Logger): Promise<CollectorStore> {
  return ClickHouseStore.open({
    url: config.clickhouseUrl,
    database: config.clickhouseDatabase,
    queryTimeoutMs: config.queryTimeoutMs,
    insertTimeoutMs: config.insertTimeoutMs,
    // The store adds its own component to what it logs.
    logger,
    ...(config.retentionDays !== undefined ? { retentionDays: config.retentionDays } : {}),
  });
}

/** amqplib acks by message; only the delivery tag is read. */
function ackable(tag: number): Message {
  return { fields: { deliveryTag: tag } } as unknown as Message;
}

/** `Name (code): message`: the code, when the error has one (StorageError's), is what a reader of a dead letter can match on. */
function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${error.name} (${code}): ${error.message}` : `${error.name}: ${error.message}`;
}
