/**
 * Node 24 has a global Float16Array, and onnxruntime-node 1.30 then hands FP16 tensors to its
 * native binding in a form it reads as 0 bytes ("not enough space: expected N, got 0";
 * microsoft/onnxruntime#32323). bento-run carries FP16 as raw half bits in a Uint16Array on
 * every Node version, so its worker threads hide the global, as if on Node 20 or 22. Imported
 * for its effect, before onnxruntime-node, in the worker thread only.
 */
delete (globalThis as { Float16Array?: unknown }).Float16Array;
