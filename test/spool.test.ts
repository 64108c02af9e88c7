import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tryLock } from '../src/store/queue-lock.ts';
import { capQueue, droppedCount, enqueue, openSpool, QUEUE_MAX_BYTES, QUEUE_MAX_EVENTS, readQueue, recoverAbandoned } from '../src/store/spool.ts';
import { main } from '../src/run.ts';
import { endpoint, fakeContext, makeRoot, tempDir } from './helpers.ts';

function eventFile(i: number) {
  const uuid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  return { uuid, timestamp: `2026-01-01T00:00:${String(i % 60).padStart(2, '0')}.${String(i).padStart(3, '0')}Z` };
}

test('past the event cap the oldest events are dropped first, and counted on the next event created', async (t) => {
  const state = tempDir(t);
  const spool = openSpool(state, undefined);
  assert.ok(spool);
  for (let i = 0; i < QUEUE_MAX_EVENTS + 5; i++) {
    const { uuid, timestamp } = eventFile(i);
    enqueue(spool, { uuid, timestamp: `2026-01-01T00:${String(Math.floor(i / 60)).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.000Z` }, JSON.stringify({ api_key: 'k', event: 'start', uuid, timestamp }));
  }
  assert.equal(capQueue(spool), 5);
  const kept = readQueue(spool, () => assert.fail('no file is corrupt'));
  assert.equal(kept.length, QUEUE_MAX_EVENTS);
  assert.equal(kept[0].event.uuid, eventFile(5).uuid, 'the five oldest went');
  assert.equal(droppedCount(spool), 5);

  const ctx = fakeContext();
  const root = makeRoot(t, {});
  await main(['start', '--dry-run', '--state-dir', state, '--root', root, '--endpoint', 'http://127.0.0.1:9'], ctx);
  assert.equal(JSON.parse(ctx.out.join('')).properties.queue_dropped, 5, 'the next event carries the count');
  assert.equal(droppedCount(spool), 5, 'a dry run leaves it for the real next event');
});

test('past the byte cap the oldest events are dropped first', (t) => {
  const spool = openSpool(tempDir(t), undefined);
  assert.ok(spool);
  const big = 'x'.repeat(Math.ceil(QUEUE_MAX_BYTES / 10));
  for (let i = 0; i < 12; i++) {
    const { uuid } = eventFile(i);
    enqueue(spool, { uuid, timestamp: `2026-01-01T00:00:${String(i).padStart(2, '0')}.000Z` }, JSON.stringify({ api_key: 'k', event: 'start', uuid, padding: big }));
  }
  assert.equal(capQueue(spool), 3);
  assert.equal(readQueue(spool, () => undefined)[0].event.uuid, eventFile(3).uuid);
});

test('a temporary file left by a killed writer is never read as an event, and is cleaned once stale', (t) => {
  const spool = openSpool(tempDir(t), undefined);
  assert.ok(spool);
  enqueue(spool, eventFile(1), JSON.stringify({ api_key: 'k', event: 'start', ...eventFile(1) }));
  const torn = path.join(spool.dir, '20260101000000-x.json.abc123.tmp');
  writeFileSync(torn, '{"api_key":"k","ev');
  assert.equal(readQueue(spool, () => assert.fail('a temp file is not a queue file')).length, 1);
  recoverAbandoned(spool, Date.now());
  assert.ok(readdirSync(spool.dir).includes(path.basename(torn)), 'a fresh temp file may still be being written');
  utimesSync(torn, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
  recoverAbandoned(spool, Date.now());
  assert.ok(!readdirSync(spool.dir).includes(path.basename(torn)));
});

test('the lock admits one flusher; a lock whose owner died is taken over', (t) => {
  const spool = openSpool(tempDir(t), undefined);
  assert.ok(spool);
  const unlock = tryLock(spool, 100, 0, () => true);
  assert.ok(unlock);
  assert.equal(tryLock(spool, 200, 1, () => true), undefined, 'held by a live process');
  assert.ok(tryLock(spool, 200, 1, (pid) => pid !== 100), 'owner 100 is gone');
});

test('a state dir owned by someone else is not used', (t) => {
  const state = tempDir(t);
  mkdirSync(path.join(state, 'queue'), { mode: 0o700 });
  assert.equal(openSpool(state, 12345), undefined);
});

test('the next real event carries queue_dropped and the count starts again from zero', async (t) => {
  const state = tempDir(t);
  const spool = openSpool(state, undefined);
  assert.ok(spool);
  writeFileSync(path.join(state, 'queue-dropped'), '7\n');
  const server = await endpoint(t);
  assert.equal(await main(['start', '--state-dir', state, '--root', makeRoot(t, {}), '--endpoint', server.url], fakeContext()), 0);
  assert.equal(server.events()[0]?.properties && (server.events()[0].properties as Record<string, unknown>).queue_dropped, 7);
  assert.equal(droppedCount(spool), 0);
});
