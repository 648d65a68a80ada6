/**
 * The gRPC load generator, bench/load.ts's counterpart, in its own process: `concurrency`
 * closed loops of ModelInfer over one grpc-js channel for `durationMs` after a warm-up, then one
 * JSON line (LoadResult) on stdout. The request is encoded once and the answers are not
 * decoded, as the HTTP load sends fixed bytes and reads the body without parsing it.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client, credentials, Metadata, status } from '@grpc/grpc-js';
import { type LoadResult, percentile } from './load.js';

export interface GrpcLoadArgs {
  /** host:port */
  readonly address: string;
  /** A ModelInferRequest, encoded. */
  readonly requestFile: string;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

const METHOD = '/inference.GRPCInferenceService/ModelInfer';
const bytes = (b: Buffer) => b;

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as GrpcLoadArgs;
  const request = readFileSync(args.requestFile);
  const client = new Client(args.address, credentials.createInsecure(), {
    'grpc.max_receive_message_length': 256 * 1024 * 1024,
    'grpc.max_send_message_length': 256 * 1024 * 1024,
  });
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const measureFrom = start + args.warmupMs;
  const end = measureFrom + args.durationMs;
  const once = () =>
    new Promise<void>((done, fail) => {
      client.makeUnaryRequest(METHOD, bytes, bytes, request, new Metadata(), {}, (e) =>
        e ? fail(e) : done(),
      );
    });
  async function loop(): Promise<void> {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await once();
      } catch (e) {
        errors++;
        const err = e as { code?: number; details?: string };
        firstError ??= `gRPC ${status[err.code ?? status.UNKNOWN]}: ${err.details ?? e}`;
        continue;
      }
      const t1 = performance.now();
      if (t0 >= measureFrom && t1 <= end) latencies.push(t1 - t0);
    }
  }
  await Promise.all(Array.from({ length: args.concurrency }, loop));
  client.close();
  latencies.sort((a, b) => a - b);
  const result: LoadResult = {
    requests: latencies.length,
    errors,
    rps: latencies.length / (args.durationMs / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    ...(firstError ? { firstError } : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  await main();
