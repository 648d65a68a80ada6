/**
 * Large JSON bodies are decoded on threads of their own: parsing a [1,3,224,224] FP32 tensor
 * as JSON takes 20 ms or more, which on the HTTP thread would stall every other request.
 * Small bodies stay inline, where a thread hop would cost more than the parse.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { InferenceError, type InferenceErrorCode } from '../errors.js';
import type { ModelInfo } from '../runtime/types.js';
import { decodeRestBody } from './decode.js';
import type { DecodeReply, DecodeTask } from './decode-worker.js';
import type { RestInferRequest } from './rest-codec.js';

/** Bodies from this size on go to a decoder thread (binary ones never: they cost nothing). */
export const OFFLOAD_BYTES = 256 * 1024;

export interface Decoder {
  /** A large JSON body goes to a decoder thread, and is no longer the caller's to use. */
  decode(
    body: Buffer,
    headerLength: string | string[] | undefined,
    model: ModelInfo,
  ): Promise<RestInferRequest>;
  close(): Promise<void>;
}

export interface DecoderOptions {
  /** Decoder threads (default: one per core; 0: every body on the HTTP thread). */
  readonly threads?: number;
  readonly offloadBytes?: number;
  /** Read long number lists straight from the bytes (default true; false: JSON.parse all). */
  readonly lift?: boolean;
}

export function createDecoder(opts: DecoderOptions = {}): Decoder {
  const offload = opts.offloadBytes ?? OFFLOAD_BYTES;
  const lift = opts.lift ?? true;
  let pool: Piscina<DecodeTask, DecodeReply> | null = null;
  const threads = opts.threads ?? availableParallelism();
  return {
    async decode(body, headerLength, model) {
      const header = Array.isArray(headerLength) ? headerLength[0] : headerLength;
      // With the binary extension the JSON part is small: parse it here.
      if (threads === 0 || body.length < offload || header !== undefined) {
        return decodeRestBody(body, headerLength, model, lift);
      }
      pool ??= new Piscina({
        filename: fileURLToPath(new URL('./decode-worker.js', import.meta.url)),
        minThreads: 1,
        maxThreads: Math.max(1, threads),
        idleTimeout: 30_000,
      });
      // A body read in several chunks is a buffer of its own (Buffer.concat): hand it over
      // instead of copying it; one from a single chunk may share its memory, so it is copied.
      const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
      const reply = await pool.run(
        { body, headerLength: header, model, lift },
        owned ? { transferList: [body.buffer as ArrayBuffer] } : {},
      );
      if ('error' in reply) {
        throw new InferenceError(reply.error.code as InferenceErrorCode, reply.error.message);
      }
      return reply.request;
    },
    async close() {
      await pool?.destroy();
    },
  };
}
