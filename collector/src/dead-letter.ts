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
  const options: Options.Publish = { persistent: true, headers };
  if (typeof properties?.contentType === 'string') options.contentType = properties.contentType;
  if (typeof properties?.contentEncoding === 'string') options.contentEncoding = properties.contentEncoding;
  if (typeof properties?.messageId === 'string') options.messageId = properties.messageId;
  if (typeof properties?.timestamp === 'number') options.timestamp = properties.timestamp;
  if (typeof properties?.appId === 'string') options.appId = properties.appId;
  return options;
}

/** The same headers without the original ones, for when those cannot be encoded. */
export function minimalDeadLetterOptions(info: DeadLetterInfo): Options.Publish {
  return deadLetterOptions(undefined, info);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
