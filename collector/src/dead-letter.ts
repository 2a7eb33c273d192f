/**
 * What a dead-lettered message looks like: the original body and properties,
 * plus headers saying why. The collector publishes it itself rather than
 * rejecting into the source queue's x-dead-letter-exchange, because existing
 * Zipkin queues have none.
 */
import type { MessageProperties, Options } from 'amqplib';

export const REASON_HEADER = 'x-tracehouse-reason';
export const ERROR_HEADER = 'x-tracehouse-error';
export const QUEUE_HEADER = 'x-tracehouse-queue';
export const COLLECTOR_HEADER = 'x-tracehouse-collector';
export const TIME_HEADER = 'x-tracehouse-dead-lettered-at';
/** Unique per publish, so that a copy the broker returns (routed to no queue) is told apart from the others. */
export const PUBLISH_ID_HEADER = 'x-tracehouse-dead-letter-id';

const MAX_ERROR_CHARS = 1_000;

export interface DeadLetterInfo {
  reason: string;
  error: string;
  queue: string;
  collector: string;
  now?: Date;
}

/** Publish options for the dead-lettered copy of a message. */
export function deadLetterOptions(properties: Partial<MessageProperties> | undefined, info: DeadLetterInfo): Options.Publish {
  const error = info.error.length > MAX_ERROR_CHARS ? `${info.error.slice(0, MAX_ERROR_CHARS)}…` : info.error;
  const headers: Record<string, unknown> = {
    ...(isRecord(properties?.headers) ? properties.headers : {}),
    [REASON_HEADER]: info.reason,
    [ERROR_HEADER]: error,
    [QUEUE_HEADER]: info.queue,
    [COLLECTOR_HEADER]: info.collector,
    [TIME_HEADER]: (info.now ?? new Date()).toISOString(),
  };
  // Mandatory: a copy that routes to no queue (the dead-letter queue deleted
  // or unbound) is returned before the broker confirms it, instead of being
  // confirmed and dropped.
  const options: Options.Publish = { persistent: true, mandatory: true, headers };
  if (typeof properties?.contentType === 'string') options.contentType = properties.contentType;
  if (typeof properties?.contentEncoding === 'string') options.contentEncoding = properties.contentEncoding;
  if (typeof properties?.messageId === 'string') options.messageId = properties.messageId;
  if (typeof properties?.timestamp === 'number') options.timestamp = properties.timestamp;
  if (typeof properties?.appId === 'string') options.appId = properties.appId;
  return options;
}

/**
 * `options` for one publish, tagged with `publishId`. The id goes in a header,
 * not in messageId, which keeps the original message's.
 */
export function withPublishId(options: Options.Publish, publishId: string): Options.Publish {
  return { ...options, headers: { ...(isRecord(options.headers) ? options.headers : {}), [PUBLISH_ID_HEADER]: publishId } };
}

/** The id withPublishId gave a (returned) message, if any. */
export function publishIdOf(properties: Partial<MessageProperties> | undefined): string | undefined {
  const headers: unknown = properties?.headers;
  const id = isRecord(headers) ? headers[PUBLISH_ID_HEADER] : undefined;
  return typeof id === 'string' ? id : undefined;
}

/** The same headers without the original ones, for when those cannot be encoded. */
export function minimalDeadLetterOptions(info: DeadLetterInfo): Options.Publish {
  return deadLetterOptions(undefined, info);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
