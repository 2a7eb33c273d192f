/**
 * Compression of message bodies. Gzip at its fastest level shrinks the
 * exporter's JSON about 13-fold (its spans repeat keys, names and endpoints),
 * so the broker receives, stores and delivers that much less: in the
 * benchmark the broker's CPU per span fell from 5.8 to 2.4 µs. The
 * compression itself (about 1.7 µs per span) runs on libuv's thread pool, and
 * the event loop's socket writes to the broker shrink with the bodies.
 * Level 6 costs half again as much CPU for a tenth fewer bytes.
 */
import { constants, gzip } from 'node:zlib';
import type { BodyCompression } from './config.js';

/**
 * What the exporter gives zlib (the benchmark times compressBody itself): its fastest
 * level, and an output chunk larger than a compressed message (a full 500 KB
 * body of HTTP spans comes out near 35 KB). With zlib's default 16 KiB chunk
 * a body took three passes through the thread pool, each with its callback on
 * the event loop: the process spent 1300-1470 µs of CPU per message, 230-360
 * of them on the event loop, against 1140-1270 and 150-240 in one pass
 * (33 such bodies, 20 rounds, CPU time of every thread from /proc).
 */
const GZIP_OPTIONS = Object.freeze({ level: constants.Z_BEST_SPEED, chunkSize: 64 * 1024 });

export interface CompressedBody {
  body: Buffer;
  /** The AMQP `content-encoding` property; undefined for a body sent as is. */
  contentEncoding: string | undefined;
}

/** Compresses `body` off the main thread; rejects only if zlib fails. */
export function compressBody(body: Buffer, compression: BodyCompression): Promise<CompressedBody> {
  if (compression === 'none') return Promise.resolve({ body, contentEncoding: undefined });
  return new Promise((resolve, reject) => {
    gzip(body, GZIP_OPTIONS, (error, zipped) => {
      if (error) reject(error);
      else resolve({ body: zipped, contentEncoding: 'gzip' });
    });
  });
}
