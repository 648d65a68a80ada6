/** A decoder thread: large JSON infer bodies -> tensors, off the HTTP thread. */
import { Piscina } from 'piscina';
import { BentoError } from '../errors.js';
import type { ModelInfo } from '../runtime/types.js';
import { addTensorBuffers } from '../tensor/datatypes.js';
import { decodeRestBody } from './decode.js';
import type { RestInferRequest } from './rest-codec.js';

export interface DecodeTask {
  readonly body: Uint8Array;
  readonly headerLength: string | undefined;
  readonly model: ModelInfo;
  readonly lift: boolean;
}

export type DecodeReply =
  | { readonly request: RestInferRequest }
  | { readonly error: { readonly code: string; readonly message: string } };

export default function decode(task: DecodeTask): DecodeReply {
  try {
    const body = Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength);
    const request = decodeRestBody(body, task.headerLength, task.model, task.lift);
    return Piscina.move({
      [Piscina.transferableSymbol]: addTensorBuffers(request.inputs, []),
      [Piscina.valueSymbol]: { request },
    } as unknown as Parameters<typeof Piscina.move>[0]) as unknown as DecodeReply;
  } catch (e) {
    if (e instanceof BentoError) return { error: { code: e.code, message: e.message } };
    throw e;
  }
}
