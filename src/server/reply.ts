/**
 * Writing REST answers: JSON bodies, the binary tensor framing, and the one function that maps
 * an error's kind (or, for the few HTTP-only codes, its code) to a status.
 */
import type { ServerResponse } from 'node:http';
import { BentoError, type ErrorKind } from '../errors.js';
import { HEADER_LENGTH } from '../tensor/binary.js';
import type { EncodedResponse } from './rest-codec.js';

const STATUS: Readonly<Record<ErrorKind, number>> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  NOT_FOUND: 404,
  TOO_LARGE: 413,
  INTERNAL: 500,
  UNIMPLEMENTED: 501,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
};

/** HTTP-only refusals whose status says more than their kind's. */
const CODE_STATUS: Readonly<Record<string, number>> = {
  BENTO_ERR_HTTP_METHOD: 405,
  BENTO_ERR_HTTP_MEDIA_TYPE: 415,
  BENTO_ERR_HTTP_HEADERS_TOO_LARGE: 431,
};

/** The one place where an error becomes an HTTP status. */
export function statusFor(e: unknown): number {
  if (!(e instanceof BentoError)) return 500;
  return CODE_STATUS[e.code] ?? STATUS[e.kind];
}

export function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** `{"error", "code"}` with the error's status (503 with Retry-After); returns the status. */
export function sendError(
  res: ServerResponse,
  e: unknown,
  headers: Record<string, string> = {},
): number {
  const status = statusFor(e);
  if (!res.headersSent) {
    const code = e instanceof BentoError ? e.code : 'BENTO_ERR_INTERNAL';
    const message = e instanceof BentoError ? e.message : 'internal error (see the server log)';
    send(
      res,
      status,
      { error: message, code },
      {
        ...(status === 503 ? { 'retry-after': '1' } : {}),
        ...headers,
      },
    );
  }
  return status;
}

/** Writes a response, with the binary tensor extension's framing when there are bytes. */
export function sendInferResponse(res: ServerResponse, body: EncodedResponse): void {
  if (body.binary.length === 0) {
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body.json),
    });
    res.end(body.json);
    return;
  }
  const header = Buffer.from(body.json, 'utf8');
  const length = body.binary.reduce((n, b) => n + b.length, header.length);
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': length,
    [HEADER_LENGTH]: header.length,
  });
  // One writev for the header and every tensor, without copying them into one buffer.
  res.cork();
  res.write(header);
  for (const b of body.binary) res.write(b);
  res.end(); // flushes what was corked
}
