import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dialects, startReplicas } from '../../testing/harness.js';
import { seenWithinASecond } from '../../testing/replicas.js';

// Replicas exist only where they share PostgreSQL; SQLite is one process.
for (const dialect of dialects().filter((d) => d === 'postgres')) {
  describe(`CA rotation across replicas (${dialect})`, () => {
    test('a rotation started, then finished, on A is taken up by B within a second, by NOTIFY', async () => {
      const { a, b, close } = await startReplicas(dialect);
      try {
        const oldPin = b.server.identity.ca.pin;
        assert.equal((await a.admin('POST', '/v1/ca/rotate')).status, 201);
        const next = a.server.identity.nextCa!;
        await seenWithinASecond(
          'the new root of a rotation',
          () => b.server.identity.nextCa?.pin === next.pin,
        );
        assert.equal(b.server.identity.ca.pin, oldPin, 'both roots are trusted during the overlap');
        assert.equal((await a.admin('POST', '/v1/ca/finish', { force: true })).status, 200);
        await seenWithinASecond('the finished rotation', () => b.server.identity.ca.pin === next.pin);
        assert.equal(b.server.identity.nextCa, undefined);
      } finally {
        await close();
      }
    });
  });
}
