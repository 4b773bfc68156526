import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser } from './sse.js';

test('frames are parsed across chunk boundaries; comments are dropped; data lines join', () => {
  const parser = new SseParser();
  const text =
    ': connected\n\nid: 7\nevent: note\ndata: {"a":\ndata: 1}\n\n: keep-alive\n\nid: 8\r\nevent: gap\r\ndata: x\r\n\r\n';
  const frames = [];
  for (const ch of text) frames.push(...parser.push(ch));
  assert.deepEqual(frames, [
    { event: 'note', id: '7', data: '{"a":\n1}' },
    { event: 'gap', id: '8', data: 'x' },
  ]);
});
