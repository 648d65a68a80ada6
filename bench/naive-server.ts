/**
 * What a user would write by hand: node:http, one onnxruntime session on the main thread,
 * JSON in and out. Argument: MODEL.onnx INTRA_OP_THREADS. Prints its port on stdout.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import ort from 'onnxruntime-node';

const [model, threads] = process.argv.slice(2);
const session = await ort.InferenceSession.create(model!, {
  intraOpNumThreads: Number(threads ?? 1),
});

interface Input {
  name: string;
  shape: number[];
  data: number[];
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', async () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { inputs: Input[] };
    const feeds: Record<string, ort.Tensor> = {};
    for (const i of body.inputs)
      feeds[i.name] = new ort.Tensor('float32', Float32Array.from(i.data), i.shape);
    const out = await session.run(feeds);
    const outputs = Object.entries(out).map(([name, t]) => ({
      name,
      datatype: 'FP32',
      shape: t.dims,
      data: Array.from(t.data as Float32Array),
    }));
    const text = JSON.stringify({ outputs });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
