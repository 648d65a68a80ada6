/**
 * The CUDA session probe's child process (see probe.ts): creates a session of a tiny model with
 * the CUDA provider on the GPU given as argv[2], runs it once and prints one JSON line. It runs
 * alone so that a provider or driver that crashes or hangs cannot take `doctor` down.
 */
import ort from 'onnxruntime-node';

/** scripts/onnx-builder.ts makeTiny(): y = x + [0.5, -1, 2, 0.25], x float32 [batch, 4]. */
const TINY_MODEL =
  'CAgSHmJlbnRvLXJ1bi9zY3JpcHRzL29ubngtYnVpbGRlcjptChUKAXgKAWMSAXkaBUFkZF8wIgNBZGQSBHRpbnkqGgoBBBABQgFjShAAAAA/AACAvwAAAEAAAIA+WhgKAXgSEwoRCAESDQoHEgViYXRjaAoCCARiGAoBeRITChEIARINCgcSBWJhdGNoCgIIBEIECgAQEQ==';

const deviceId = Number(process.argv[2]);
let result: { ok: boolean; error?: string };
try {
  const session = await ort.InferenceSession.create(Buffer.from(TINY_MODEL, 'base64'), {
    executionProviders: [{ name: 'cuda', deviceId }],
  });
  const x = new ort.Tensor('float32', new Float32Array([1, 1, 1, 1]), [1, 4]);
  const y = (await session.run({ x })).y?.data as Float32Array | undefined;
  result =
    y?.[0] === 1.5 && y[3] === 1.25
      ? { ok: true }
      : { ok: false, error: `the test session ran but returned ${y ? [...y] : 'nothing'}` };
} catch (e) {
  result = { ok: false, error: e instanceof Error ? e.message : String(e) };
}
process.stdout.write(`${JSON.stringify(result)}\n`);
