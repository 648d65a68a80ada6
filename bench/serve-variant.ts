/**
 * A bento-run server with a design alternative switched, for the benchmark only:
 *   node dist/bench/serve-variant.js SPEC.yaml '{"depth":1,"decoderThreads":0}'
 * Prints {"event":"listening","url":...} like `bento-run serve --log-format json`; SIGTERM stops.
 */
import { createLogger } from '../src/log.js';
import { discoverDevices, planPlacement } from '../src/plan/index.js';
import { startRuntime } from '../src/runtime/pool.js';
import { startServer } from '../src/server/http.js';
import { loadSpec } from '../src/spec/validate.js';

const [specFile, variantJson] = process.argv.slice(2);
const variant = JSON.parse(variantJson ?? '{}') as {
  depth?: number;
  holdAnswersMs?: number;
  decoderThreads?: number;
  lift?: boolean;
};
const { spec } = loadSpec(specFile!);
const plan = planPlacement(spec, discoverDevices({ env: process.env }).devices, { cpu: true });
const runtime = await startRuntime(plan, {
  ...(variant.depth === undefined ? {} : { depth: variant.depth }),
  ...(variant.holdAnswersMs === undefined ? {} : { holdAnswersMs: variant.holdAnswersMs }),
});
const server = await startServer(runtime, {
  host: '127.0.0.1',
  port: 0,
  version: 'bench',
  log: createLogger({ level: 'warn', write: (l) => process.stderr.write(l) }),
  maxBodyBytes: spec.server.maxBodyMb * 1024 * 1024,
  ...(variant.decoderThreads === undefined ? {} : { decoderThreads: variant.decoderThreads }),
  ...(variant.lift === undefined ? {} : { liftJsonLists: variant.lift }),
});
process.stdout.write(`${JSON.stringify({ event: 'listening', url: server.url })}\n`);
process.once('SIGTERM', async () => {
  await server.drain(5);
  await runtime.close();
  process.exit(0);
});
