import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EventEnvelope } from '@muster/proto';
import { detail } from './events.js';

const event = (kind: string, data: Record<string, unknown>): EventEnvelope => ({
  id: 1,
  ts: '2026-01-01T00:00:00.000Z',
  kind,
  actor: 'admin',
  severity: 'info',
  data,
});

test('an event reads as one short line: text, tag, status change, or its scalar fields', () => {
  assert.equal(detail(event('incident', { text: 'disk\nfilling', ref: 3 })), 'disk filling (re #3)');
  assert.equal(detail(event('tag', { tag: 'deploy:v1' })), '#deploy:v1');
  assert.equal(
    detail(
      event('node.status_changed', {
        name: 'web-1',
        from: 'ok',
        to: 'attention',
        reasons: ['disk / 93% full'],
      }),
    ),
    'ok → attention (disk / 93% full)',
  );
  assert.equal(
    detail(event('node.enrolled', { name: 'web-1', labels: {}, facts: {}, subject: 'node:1', serial: 'ab' })),
    'name=web-1 serial=ab',
  );
  assert.equal(detail(event('note', { text: 'x'.repeat(300) })).length, 120);
});
