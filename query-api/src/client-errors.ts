/**
 * Answers for requests Node's HTTP parser refuses before fastify sees them
 * (fastify's `clientErrorHandler`): headers or request line over the limit,
 * a timeout, bytes that are not HTTP. Written straight to the socket, as Node
 * and fastify do for these, but with the API's `{ code, message }` body.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorBody } from './errors.js';

/**
 * Largest request line plus headers accepted (Node's default is 16 KiB). A
 * search may carry four names and an annotation query of up to 16 384
 * characters each, percent-encoded at up to 9 bytes a character (CJK).
 */
export const MAX_REQUEST_HEADER_BYTES = 1024 * 1024;

function answerOf(error: NodeJS.ErrnoException): { status: number; body: ErrorBody } {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        body: { code: 'REQUEST_TOO_LARGE', message: `the request line and headers are longer than ${MAX_REQUEST_HEADER_BYTES} bytes` },
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, body: { code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time' } };
    default:
      return { status: 400, body: { code: 'MALFORMED_REQUEST', message: 'the request is not valid HTTP/1.1' } };
  }
}

export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, body } = answerOf(error);
  const text = JSON.stringify(body);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy();
}
