/** http/message-ids through http/admin: a search reads each body once, across API requests (each its own `withActor` instance). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../config/schema.js';
import type { Intake } from '../intake/intake.js';
import type { QueueFilter } from '../queue/recipient-queue.js';
import type { Queue } from '../queue/store.js';
import { Admin } from './admin.js';

test('Message-ID search: bodies read once and remembered across requests; a message that left is forgotten', async () => {
  const bodies = new Map([['A', 'Message-ID: <One@x.test>\r\nSubject: a\r\n\r\nx\r\n'], ['B', 'Subject: b\r\nMessage-ID:\r\n <two@x.test>\r\n\r\nx\r\n'], ['C', 'Subject: none\r\n\r\nx\r\n']]);
  let reads = 0;
  let asked: QueueFilter | undefined;
  // Only what a search touches: the ids, the bodies and the listing it hands the matches to.
  const store = {
    messages: { getBody: async (id: string) => { reads++; return Buffer.from(bodies.get(id) ?? ''); } },
    recipients: { listMessageIds: async () => [...bodies.keys()], listMessages: async (f: QueueFilter) => { asked = f; return []; } },
    gate: { getDestination: async () => undefined },
  } as unknown as Queue;
  const admin = new Admin({ store, intake: undefined as unknown as Intake, clock: () => 0, maxMessageSize: () => 0, config: () => ({}) as Config });
  const request = () => admin.withActor({ who: 'dash', via: 'api' });

  await request().list({ q: ' TWO@x ', limit: 10 });
  assert.deepEqual(asked?.search, { text: 'two@x', alsoIds: ['B'] });
  assert.equal(asked?.limit, 10);
  assert.equal(reads, 3);
  await request().list({ q: 'one@' });
  assert.deepEqual(asked?.search, { text: 'one@', alsoIds: ['A'] });
  assert.equal(reads, 3, 'the second request read no body again');
  bodies.delete('A');
  bodies.set('D', 'Message-ID: <one@y.test>\r\n\r\n');
  await request().list({ q: 'one@' });
  assert.deepEqual(asked?.search, { text: 'one@', alsoIds: ['D'] });
  assert.equal(reads, 4, 'only the new message was read');
  await request().list({});
  assert.equal(asked?.search, undefined);
});
