// The core's per-request deadline: the part of AbortSignal the queues use, without EventTarget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Cancellation, Deadline } from '../src/runtime/cancellation.js';

test('Deadline: listeners run once, in order, with the reason set; removed ones do not run', () => {
  const d = new Deadline();
  const seen: string[] = [];
  const b = () => seen.push(`b:${String(d.reason)}`);
  d.addEventListener('abort', () => seen.push(`a:${d.aborted}`));
  d.addEventListener('abort', b);
  d.addEventListener('abort', () => seen.push('c'));
  d.removeEventListener('abort', b);
  assert.equal(d.aborted, false);
  d.abort('late');
  d.abort('again');
  assert.deepEqual(seen, ['a:true', 'c']);
  assert.equal(d.reason, 'late');
  d.addEventListener('abort', () => seen.push('after'));
  assert.deepEqual(seen, ['a:true', 'c']);
});

test('a real AbortSignal is a Cancellation too', () => {
  const c = new AbortController();
  const signal: Cancellation = c.signal;
  let reason: unknown;
  signal.addEventListener('abort', () => {
    reason = signal.reason;
  });
  c.abort('gone');
  assert.equal(reason, 'gone');
});
