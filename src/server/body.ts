/** Reading a request body within server.max_body_mb and the request's deadline. */
import type { IncomingMessage } from 'node:http';
import { InferenceError } from '../errors.js';
import type { Cancellation } from '../runtime/cancellation.js';

function tooLarge(limit: number): InferenceError {
  const mb = limit / (1024 * 1024);
  return new InferenceError(
    'BENTO_ERR_INFER_TOO_LARGE',
    `request body is larger than the limit of ${limit} bytes (server.max_body_mb: ${Number.isInteger(mb) ? mb : mb.toFixed(2)})`,
  );
}

/**
 * The whole body, or the reason it cannot be had: larger than `limit` (413), or the deadline
 * passed first (the signal's reason). Either way the caller answers and closes the connection.
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  signal?: Cancellation,
): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (e: unknown) => {
      cleanup();
      req.resume(); // let the rest drain, unread, while the answer goes out
      reject(e);
    };
    const onAbort = () => stop(signal?.reason);
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) stop(tooLarge(limit));
      else chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    // The client went away or its framing broke mid-body: its problem, not the server's.
    const onError = (e: Error) =>
      stop(
        new InferenceError(
          'BENTO_ERR_INFER_INVALID',
          `the request body was cut short or malformed (${e.message})`,
        ),
      );
    function cleanup() {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
