/**
 * onnxruntime's error messages -> bento-run errors. A kernel that refuses a value the request
 * carried (a Gather index out of range, an image size the model cannot take) is the client's
 * problem: 400, naming the model and the node. Memory or device failures stay 500. Either way
 * the message loses onnxruntime's source paths and C++ signatures, which help no client.
 */
import { RuntimeError } from '../errors.js';

const NODE_FAILURE =
  /Non-zero status code returned while running (\S+) node\. Name:'([^']*)' Status Message: ([\s\S]*)/;
const INTERNAL = /Failed to allocate|bad_alloc|out of memory|CUDA|cuda|cudnn|cublas/i;

/** Removes source locations, C++ signatures and stack-like noise from an onnxruntime message. */
export function cleanOrtMessage(message: string): string {
  return message
    .replace(/\S*\/[\w./-]+\.(?:cc|cpp|h|hpp|cu):\d+\s*/g, '')
    .replace(/(?:[\w:<>,*& ]+ )?onnxruntime::[\w:<>~]+\([^)]*\)(?: const)?\s*/g, '')
    .replace(/\[ONNXRuntimeError\] : \d+ : \w+ : /g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 500);
}

export function inferenceError(model: string, message: string): RuntimeError {
  const node = NODE_FAILURE.exec(message);
  const clean = cleanOrtMessage(node ? node[3]! : message);
  if (INTERNAL.test(message)) {
    return new RuntimeError(
      'BENTO_ERR_RUNTIME_INFERENCE_FAILED',
      `model \`${model}\`: onnxruntime failed: ${clean}`,
      { kind: 'INTERNAL' },
    );
  }
  const where = node ? `node \`${node[2]}\` (${node[1]})` : 'onnxruntime';
  return new RuntimeError(
    'BENTO_ERR_RUNTIME_INFERENCE',
    `model \`${model}\`: ${where} rejected the input: ${clean}`,
    { kind: 'INVALID_ARGUMENT' },
  );
}
