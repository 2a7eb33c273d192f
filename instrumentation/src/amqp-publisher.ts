/**
 * The exporter's transport: one AMQP connection with one confirm channel,
 * publishing persistent messages to a queue through the default exchange.
 *
 * amqplib 2.x has its own connection recovery, but its reconnect timer and
 * heartbeat timers are not unref()'d, and a tracer must never keep its host
 * process alive; so this keeps its own small reconnect loop (exponential
 * backoff with jitter, unref()'d timer) and unrefs the socket once connected.
 *
 * Every call into amqplib runs with tracing suppressed, so that an
 * instrumented `net`/`amqplib` never traces the tracer's own traffic.
 */
import { context, diag } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import type { ChannelModel, ConfirmChannel } from 'amqplib';

/**
 * amqplib is loaded on the first connect, not when this package is imported:
 * importing it earlier would load it before startTracing registers the app's
 * instrumentations, and the amqplib instrumentation patches its files only as
 * they load, so the app's own RabbitMQ calls would never be traced.
 */
let amqplib: Promise<typeof import('amqplib')> | undefined;
function loadAmqplib(): Promise<typeof import('amqplib')> {
  amqplib ??= import('amqplib');
  return amqplib;
}

/**
 * A publish on a channel the broker closed with an error (a message over its
 * size limit, no write permission): the same body may never go through. A
 * nack is not one: RabbitMQ nacks while a queue with `reject-publish` is
 * full, which passes.
 */
export class PublishRefusedError extends Error {
  override readonly name = 'PublishRefusedError';
}

export interface AmqpPublisherOptions {
  url: string;
  queue: string;
  /** TCP + AMQP handshake timeout. */
  connectTimeoutMillis?: number;
  /** First reconnect delay; doubles up to `maxReconnectDelayMillis`. */
  initialReconnectDelayMillis?: number;
  maxReconnectDelayMillis?: number;
  /** AMQP heartbeat in seconds (0 disables). */
  heartbeatSeconds?: number;
  /**
   * A publish not confirmed within this time (a blocked or wedged broker) is
   * failed and the connection renewed, so the buffer is not stuck behind it.
   */
  confirmTimeoutMillis?: number;
  /** Shown in the broker's management UI and `rabbitmqctl list_connections`. */
  connectionName?: string;
  /** Called once each time a connection becomes usable. */
  onReady?: () => void;
}

const logger = diag.createComponentLogger({ namespace: '@tracehouse/instrumentation/amqp-publisher' });

/** Runs `fn` in a context where the OpenTelemetry SDK records nothing. */
function untraced<T>(fn: () => T): T {
  return context.with(suppressTracing(context.active()), fn);
}

/**
 * Best effort: drops a connection's socket at once (amqplib internals,
 * guarded); the socket error it raises closes the connection and its channels
 * in amqplib, as a lost connection does.
 * - `destroy`: a peer that does not answer a close, so that the connection
 *   holds nothing until a heartbeat timeout.
 * - `reset` (TCP RST): after a confirm timeout (a broker blocked by a resource
 *   alarm, or wedged), whose publishes may still wait unread in the broker's
 *   socket buffer. A graceful close would leave them there, for the broker to
 *   route once it reads again, on top of the copies sent again on a new
 *   connection, and would leave the blocked connection open on the broker, one
 *   more per timeout. A reset discards what the broker has not read. A TLS
 *   socket cannot be reset; it is destroyed.
 */
function dropConnection(model: ChannelModel, how: 'destroy' | 'reset', why: string): void {
  const connection = model.connection as unknown as {
    stream?: { resetAndDestroy?: () => void; destroy?: (error?: Error) => void };
  };
  const stream = connection.stream;
  try {
    if (how === 'reset' && stream?.resetAndDestroy !== undefined) {
      try {
        stream.resetAndDestroy();
        return;
      } catch {
        // Not a TCP socket: destroyed below.
      }
    }
    stream?.destroy?.(new Error(why));
  } catch (error) {
    logger.debug('could not drop the connection', error instanceof Error ? error.message : error);
  }
}

/**
 * Closes a channel or connection, or gives up after `millis`; true when it
 * answered (a close that fails has closed already). amqplib never settles a
 * close once the connection has closed (a broker restart during the queue
 * check, a failed attempt), which would leave the connect attempt, and every
 * reconnect after it, waiting for good. `holdProcess`: the timer keeps the
 * process alive meanwhile (a close at shutdown), else it is unref()'d.
 */
function closeWithin(closable: { close(): Promise<void> }, millis: number, holdProcess = false): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), millis);
    if (!holdProcess) timer.unref();
  });
  const closed = closable.close().then(
    () => true,
    () => true,
  );
  return Promise.race([closed, gaveUp]).finally(() => clearTimeout(timer));
}

/** Best effort: let the process exit even while this connection is open (amqplib internals, guarded). */
function unrefConnection(model: ChannelModel, unref: boolean): void {
  const connection = model.connection as unknown as {
    stream?: { unref?: () => void; ref?: () => void };
    heartbeater?: { sendTimer?: NodeJS.Timeout; recvTimer?: NodeJS.Timeout };
  };
  if (unref) {
    connection.stream?.unref?.();
    connection.heartbeater?.sendTimer?.unref();
    connection.heartbeater?.recvTimer?.unref();
  } else {
    connection.stream?.ref?.();
  }
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 404;
}

/**
 * What belongs to one channel: an old channel closing late (a wedged broker
 * answers the close after the reconnection) must only fail its own publishes.
 */
interface ChannelState {
  /** Fails the publishes awaiting a confirm (one close listener for all of them). */
  readonly pending: Set<(error: Error) => void>;
  error: Error | undefined;
}

export class AmqpPublisher {
  readonly #options: Required<Omit<AmqpPublisherOptions, 'onReady'>> & Pick<AmqpPublisherOptions, 'onReady'>;
  #model: ChannelModel | undefined;
  #channel: ConfirmChannel | undefined;
  #connecting = false;
  #stopped = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #keepAlive = false;
  /** Failed connection attempts since the last successful one (for logging). */
  #attemptsSinceReady = 0;
  /** The current channel's publishes awaiting a confirm, and the error the broker closed it with. */
  #channelState: ChannelState | undefined;
  /** A channel was closed over a refusal and nothing was confirmed since: reconnecting keeps backing off. */
  #refusedSinceConfirm = false;
  /** Message ids the broker returned as unroutable (the queue is gone); their confirm then counts as a failure. */
  readonly #returned = new Set<string>();
  #nextMessageId = 0;

  constructor(options: AmqpPublisherOptions) {
    this.#options = {
      connectTimeoutMillis: 5000,
      initialReconnectDelayMillis: 200,
      maxReconnectDelayMillis: 30_000,
      heartbeatSeconds: 30,
      confirmTimeoutMillis: 30_000,
      connectionName: 'tracehouse-instrumentation',
      ...options,
    };
  }

  /** True when a message can be published right now. */
  get ready(): boolean {
    return this.#channel !== undefined;
  }

  /** Starts connecting in the background; failures are retried with backoff, never thrown. */
  start(): void {
    if (this.#stopped || this.#connecting || this.#model !== undefined || this.#timer !== undefined) return;
    void this.#connect();
  }

  /**
   * Skips a pending backoff delay and tries to connect right away (forceFlush
   * and shutdown); nothing when connected or connecting. `withinMillis` bounds
   * the attempt below the connect timeout: its socket holds the process while
   * it lasts, and a flush or shutdown must not outlast its own timeout.
   */
  connectNow(withinMillis?: number): void {
    if (this.#stopped || this.#connecting || this.#model !== undefined) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const timeout = Math.min(this.#options.connectTimeoutMillis, Math.max(100, withinMillis ?? Infinity));
    void this.#connect(timeout);
  }

  /**
   * While true, the socket keeps the process alive (used while flushing on
   * shutdown); otherwise the connection never holds the process open.
   */
  keepProcessAlive(keep: boolean): void {
    this.#keepAlive = keep;
    if (this.#model !== undefined) unrefConnection(this.#model, !keep);
  }

  /** The configured URL with the heartbeat added unless it names one itself. */
  #url(): string {
    const url = new URL(this.#options.url);
    if (url.searchParams.has('heartbeat')) return this.#options.url;
    url.searchParams.set('heartbeat', String(this.#options.heartbeatSeconds));
    return url.toString();
  }

  async #connect(timeoutMillis = this.#options.connectTimeoutMillis): Promise<void> {
    this.#connecting = true;
    let model: ChannelModel | undefined;
    try {
      const { connect } = await loadAmqplib();
      model = await untraced(() =>
        connect(this.#url(), {
          timeout: timeoutMillis,
          clientProperties: { connection_name: this.#options.connectionName },
        }),
      );
      model.on('error', (error: Error) => logger.debug('connection error', error.message));
      const current = model;
      model.on('close', () => this.#lost(current, 'connection closed'));
      if (this.#stopped) {
        await closeWithin(model, this.#options.connectTimeoutMillis);
        return;
      }
      unrefConnection(model, !this.#keepAlive);
      await untraced(() => this.#ensureQueue(current));
      const channel = await untraced(() => current.createConfirmChannel());
      const state: ChannelState = { pending: new Set(), error: undefined };
      // The broker closes a channel with an error when it refuses what was sent on it
      // (a message over its size limit, no write permission): those publishes are refused, not lost.
      channel.on('error', (error: Error) => {
        logger.debug('channel error', error.message);
        state.error = error;
      });
      // A mandatory message the default exchange could not route: the queue was deleted under us.
      // The broker sends the return before the confirm, so publish() sees it and fails.
      channel.on('return', (message: { properties: { messageId?: unknown } }) => {
        if (typeof message.properties.messageId === 'string') this.#returned.add(message.properties.messageId);
      });
      channel.on('close', () => {
        const refused = state.error;
        if (refused !== undefined) this.#refusedSinceConfirm = true;
        for (const fail of state.pending) {
          fail(
            refused === undefined
              ? new Error('channel closed before the broker confirmed')
              : new PublishRefusedError(`the broker closed the channel: ${refused.message}`),
          );
        }
        state.pending.clear();
        this.#lost(current, 'channel closed');
      });
      if (this.#stopped) {
        await closeWithin(model, this.#options.connectTimeoutMillis);
        return;
      }
      this.#model = model;
      this.#channel = channel;
      this.#channelState = state;
      // After a refusal the backoff starts over at the next confirm instead: a broker that accepts
      // the connection but refuses every publish must not be retried at the shortest delay forever.
      if (!this.#refusedSinceConfirm) this.#attempt = 0;
      if (this.#attemptsSinceReady > 0) logger.info(`connected again after ${this.#attemptsSinceReady} failed attempts`);
      else logger.debug(`connected, publishing to queue ${this.#options.queue}`);
      this.#attemptsSinceReady = 0;
      this.#options.onReady?.();
    } catch (error) {
      // Once per outage at warn level (so a wrong URL or password is visible), then quietly.
      const message = error instanceof Error ? error.message : String(error);
      if (this.#attemptsSinceReady === 0) logger.warn(`cannot reach the broker (${message}); retrying with backoff`);
      else logger.debug('connect failed', message);
      this.#attemptsSinceReady++;
      if (model !== undefined) await closeWithin(model, this.#options.connectTimeoutMillis);
      this.#scheduleReconnect();
    } finally {
      this.#connecting = false;
    }
  }

  /**
   * Makes sure the queue exists without redeclaring it: a collector may have
   * declared it with arguments (dead-lettering, limits) this side does not
   * know, and a mismatched declaration would fail. Only a missing queue is
   * declared, durable.
   */
  async #ensureQueue(model: ChannelModel): Promise<void> {
    const probe = await model.createChannel();
    probe.on('error', () => undefined);
    try {
      await probe.checkQueue(this.#options.queue);
      await closeWithin(probe, this.#options.connectTimeoutMillis);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      // A failed check closes the probe channel; declare on a fresh one.
      const declare = await model.createChannel();
      declare.on('error', () => undefined);
      await declare.assertQueue(this.#options.queue, { durable: true });
      await closeWithin(declare, this.#options.connectTimeoutMillis);
    }
  }

  /** `discardUnread`: what was in flight is sent again on a new connection, so the broker must not get this one's copies too. */
  #lost(model: ChannelModel, reason: string, discardUnread = false): void {
    if (this.#model !== model && this.#model !== undefined) return;
    if (this.#model === undefined && this.#connecting) return; // the connect attempt handles its own failure
    this.#model = undefined;
    this.#channel = undefined;
    this.#channelState = undefined;
    this.#returned.clear(); // their confirms will never come on this connection
    if (discardUnread) dropConnection(model, 'reset', 'no confirm from the broker');
    else void model.close().catch(() => undefined);
    if (this.#stopped) return;
    logger.debug(`broker connection lost (${reason}), reconnecting`);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    const base = Math.min(
      this.#options.maxReconnectDelayMillis,
      this.#options.initialReconnectDelayMillis * 2 ** this.#attempt,
    );
    this.#attempt++;
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#connect();
    }, delay);
    this.#timer.unref();
  }

  /**
   * Publishes one persistent message (with `contentEncoding` as its
   * `content-encoding` property, if given) and resolves when the broker confirms it.
   * Rejects when not connected, when the broker nacks, or when the connection
   * drops before the confirm.
   */
  publish(body: Buffer, contentEncoding?: string): Promise<void> {
    const channel = this.#channel;
    const model = this.#model;
    const state = this.#channelState;
    if (channel === undefined || model === undefined || state === undefined) {
      return Promise.reject(new Error('not connected to the broker'));
    }
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        state.pending.delete(settle);
        if (error === undefined) {
          this.#attempt = 0;
          this.#refusedSinceConfirm = false;
          resolve();
        } else reject(error);
      };
      const timer = setTimeout(() => {
        settle(new Error(`no confirm from the broker within ${this.#options.confirmTimeoutMillis} ms`));
        this.#lost(model, 'confirm timeout', true);
      }, this.#options.confirmTimeoutMillis);
      timer.unref();
      state.pending.add(settle);
      const messageId = `th-${process.pid}-${++this.#nextMessageId}`;
      try {
        untraced(() =>
          channel.sendToQueue(
            this.#options.queue,
            body,
            { persistent: true, mandatory: true, messageId, ...(contentEncoding === undefined ? {} : { contentEncoding }) },
            (error: unknown) => {
              if (error) {
                // amqplib fails the callbacks of a closing channel too: only a channel the broker
                // closed with an error is a refusal; a nack or a lost connection is not.
                const refused = state.error;
                if (error instanceof Error && error.message === 'message nacked') {
                  settle(new Error('the broker nacked the message'));
                } else if (refused !== undefined) {
                  settle(new PublishRefusedError(`the broker closed the channel: ${refused.message}`));
                } else {
                  settle(new Error('channel closed before the broker confirmed'));
                }
              } else if (this.#returned.delete(messageId)) {
                settle(new Error(`queue ${this.#options.queue} does not exist (message returned)`));
                // Reconnecting runs the queue check again, which declares the missing queue.
                this.#lost(model, 'queue missing');
              } else {
                settle();
              }
            },
          ),
        );
      } catch (error) {
        settle(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  /**
   * Closes the connection; never rejects, bounded by `timeoutMillis`. Every
   * publish has settled when it resolves: one the broker did not confirm by
   * then fails (its confirm timer is unref()'d and may never fire).
   */
  async close(timeoutMillis = 1000): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const model = this.#model;
    const state = this.#channelState;
    this.#model = undefined;
    this.#channel = undefined;
    this.#channelState = undefined;
    if (model === undefined) return;
    // The close handshake is short and bounded: let it hold the process until done.
    unrefConnection(model, false);
    const answered = await closeWithin({ close: () => untraced(() => model.close()) }, timeoutMillis, true);
    if (state !== undefined) {
      for (const fail of state.pending) fail(new Error('connection closed before the broker confirmed'));
    }
    if (answered) unrefConnection(model, true);
    else dropConnection(model, 'destroy', 'the broker did not answer the close');
  }
}
