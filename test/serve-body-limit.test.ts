import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type CliServer, post, startCli, TEST_SPECS } from './helpers/server.js';

// server.max_body_mb reaches the server through `bento-run serve`: 16 KiB here.
const LIMIT = 16 * 1024;
let srv: CliServer;

before(async () => {
  srv = await startCli([join(TEST_SPECS, 'small-body.yaml')]);
});
after(() => srv?.stop());

test('a body over server.max_body_mb gets 413, one under it is served', async () => {
  const big = await post(`${srv.url}/v2/models/tiny/infer`, {
    inputs: [{ name: 'x', shape: [1024, 4], datatype: 'FP32', data: Array(4096).fill(0.123456) }],
  });
  assert.equal(big.status, 413, big.text);
  assert.match(big.body.error, new RegExp(`larger than the limit of ${LIMIT} bytes`));
  const small = await post(`${srv.url}/v2/models/tiny/infer`, {
    inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
  });
  assert.equal(small.status, 200, small.text);
});
