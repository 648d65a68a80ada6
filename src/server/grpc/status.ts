/**
 * The one place where an error becomes a gRPC status: the error's kind maps to the status code
 * of the same name, and its BENTO_ERR_ code travels in the trailing metadata as
 * `bento-error-code`, so that clients match on it as they do on REST's `code`.
 */
import { Metadata, type StatusObject, status } from '@grpc/grpc-js';
import { BentoError, type ErrorKind } from '../../errors.js';

const CODE: Readonly<Record<ErrorKind, status>> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  UNAVAILABLE: status.UNAVAILABLE,
  TIMEOUT: status.DEADLINE_EXCEEDED,
  TOO_LARGE: status.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  INTERNAL: status.INTERNAL,
};

export const ERROR_CODE_KEY = 'bento-error-code';

/** The status a failed call ends with; anything not a BentoError is INTERNAL, its text hidden. */
export function grpcErrorFor(e: unknown): StatusObject {
  const metadata = new Metadata();
  if (!(e instanceof BentoError)) {
    metadata.set(ERROR_CODE_KEY, 'BENTO_ERR_INTERNAL');
    return { code: status.INTERNAL, details: 'internal error (see the server log)', metadata };
  }
  metadata.set(ERROR_CODE_KEY, e.code);
  return { code: CODE[e.kind], details: e.message, metadata };
}
