/**
 * SIGTERM with clients that hold connections (issue 12): nothing keeps the process up past
 * the drain, and a second signal ends it at once.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { post, startCli, TEST_SPECS, within } from './helpers/server.js';

test('SIGTERM with a client that sent nothing and one that sent half its headers: exit 0, well within the drain', async () => {
  const srv = await startCli([join(TEST_SPECS, 'slow.yaml')]);
  try {
    const silent = connect(srv.port, '127.0.0.1');
    const half = connect(srv.port, '127.0.0.1', () =>
      half.write('POST /v2/models/slow/infer HTTP/1.1\r\nhost: x\r\ncontent-'),
    );
    for (const s of [silent, half]) s.on('error', () => undefined); // reset when closed: fine
    await Promise.all([silent, half].map((s) => new Promise((r) => s.once('connect', r))));
    const started = performance.now();
    srv.child.kill('SIGTERM');
    // server.drain_timeout_s is 30: ending long before it shows nothing waited for them.
    const code = await within(srv.exited, 15_000, 'the process to exit');
    assert.equal(code, 0, srv.log());
    assert.ok(performance.now() - started < 15_000);
    assert.match(srv.log(), /at most 30s, server\.drain_timeout_s/);
    silent.destroy();
    half.destroy();
  } finally {
    await srv.stop('SIGKILL');
  }
});

test('a second signal while a request is in flight ends the process at once', async () => {
  const srv = await startCli([join(TEST_SPECS, 'slow.yaml')]);
  try {
    const rows = 40; // about 40 x 55 ms: still running when the signals come
    const held = post(`${srv.url}/v2/models/slow/infer`, {
      inputs: [{ name: 'x', shape: [rows, 64], datatype: 'FP32', data: Array(rows * 64).fill(0) }],
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    srv.child.kill('SIGTERM');
    await srv.waitForLog(/finishing in-flight requests/, 10_000);
    srv.child.kill('SIGTERM');
    await within(srv.exited, 10_000, 'the process to exit on the second signal');
    assert.match(srv.log(), /SIGTERM again: exiting at once/);
    assert.equal(srv.child.signalCode, 'SIGKILL');
    await held;
  } finally {
    await srv.stop('SIGKILL');
  }
});
