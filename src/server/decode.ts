/**
 * A REST infer body -> the core's request: the binary extension's framing, JSON (with Triton's
 * NaN/Infinity tokens; long number lists read without JSON.parse), then the tensors checked
 * against the model. Run on the HTTP thread for small bodies, on a decoder thread for large
 * JSON ones (decoder-pool.ts).
 */
import { InferenceError } from '../errors.js';
import type { ModelInfo } from '../runtime/types.js';
import { splitBody } from '../tensor/binary.js';
import { parseJsonWithNonFinite } from '../tensor/json.js';
import { liftDataLists } from '../tensor/json-lists.js';
import { parseInferRequest, type RestInferRequest } from './rest-codec.js';

export function decodeRestBody(
  body: Buffer,
  headerLength: string | string[] | undefined,
  model: ModelInfo,
  lift = true,
): RestInferRequest {
  let parts: ReturnType<typeof splitBody>;
  try {
    parts = splitBody(body, headerLength);
  } catch (e) {
    throw new InferenceError('BENTO_ERR_INFER_INVALID', (e as Error).message);
  }
  // Long number lists are read straight from the bytes, the rest is parsed (json-lists.ts).
  const lifted = lift ? liftDataLists(parts.json) : null;
  let json: unknown;
  try {
    json = parseJsonWithNonFinite(lifted ? lifted.json : parts.json.toString('utf8'));
  } catch (e) {
    throw new InferenceError(
      'BENTO_ERR_INFER_INVALID',
      `request body is not valid JSON: ${(e as Error).message.slice(0, 200)}`,
    );
  }
  return parseInferRequest(json, model, parts.binary, lifted);
}
