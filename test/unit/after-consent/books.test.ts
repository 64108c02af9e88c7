import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { keepBooks } from '../../../src/after-consent/books.ts';
import { newReport, noteOutcome } from '../../../src/after-consent/deliver/report.ts';
import { readHistory } from '../../../src/after-consent/store/history.ts';
import { store } from '../../../src/after-consent/store/outbox.ts';
import { afterFailure, emptyState } from '../../../src/after-consent/store/state.ts';
import { readState, updateState } from '../../../src/after-consent/store/state-file.ts';
import { resolveSettings } from '../../../src/before-consent/config/settings.ts';
import { fakeContext, openTestStore, tempDir, waitingEvents } from '../../support/helpers.ts';

const VENDOR = { product: 'test-daemon', endpoint: 'http://127.0.0.1:9', apiKey: 'phc_test', configDir: '/dev/null/config', stateDir: '/dev/null/state' };
const ENDPOINT = 'http://127.0.0.1:9/';
const EVENT = { api_key: 'phc_test', event: 'start', uuid: '00000000-0000-4000-8000-00000000000a', timestamp: '2026-01-02T03:04:05.000Z', properties: {} };

function setUp(t: Parameters<typeof tempDir>[0], logFile?: string) {
  const state = tempDir(t);
  const ctx = fakeContext({ vendor: VENDOR });
  const settings = resolveSettings({ 'state-dir': state, ...(logFile ? { 'log-file': logFile } : {}) }, {}, VENDOR);
  return { state, ctx, settings, opened: openTestStore(state) };
}

const stateMtime = (state: string) => statSync(path.join(state, 'state.json'), { throwIfNoEntry: false })?.mtimeMs;

test('a run whose receiver took its event, with no back-off on record, writes no state', (t) => {
  const { state, ctx, settings, opened } = setUp(t);
  const report = newReport();
  report.receiver.push({ took: true });
  noteOutcome(report, [EVENT], { kind: 'sent', reason: 'delivered', status: 200 }, ctx.now());
  keepBooks(settings, ctx, opened, report, emptyState());
  assert.equal(stateMtime(state), undefined, 'state.json never written');
  assert.deepEqual(readHistory(opened.stateDir).map((entry) => [entry.uuid, entry.outcome, entry.status]), [[EVENT.uuid, 'sent', 200]]);
});

test("the receiver's answers are applied in order, in one state write: two failures are two steps of back-off", (t) => {
  const { ctx, settings, opened } = setUp(t);
  const report = newReport();
  report.receiver.push({ took: false, retryAfterMs: undefined }, { took: false, retryAfterMs: undefined });
  keepBooks(settings, ctx, opened, report, emptyState());
  const now = ctx.now().getTime();
  const expected = afterFailure(afterFailure(emptyState(), ENDPOINT, now, 0.5, undefined), ENDPOINT, now, 0.5, undefined);
  assert.deepEqual(readState(opened.stateDir).backoff, expected.backoff);
  assert.equal(readState(opened.stateDir).backoff[ENDPOINT].failures, 2);
});

test('a success after failures ends the back-off on record; then the report is empty, so keeping it again changes nothing', (t) => {
  const { state, ctx, settings, opened } = setUp(t);
  const failing = updateState(opened.stateDir, (s) => afterFailure(s, ENDPOINT, ctx.now().getTime(), 0.5, 1000))!;
  const report = newReport();
  report.receiver.push({ took: true });
  noteOutcome(report, [EVENT], { kind: 'sent', reason: 'delivered' }, ctx.now());
  keepBooks(settings, ctx, opened, report, failing);
  assert.deepEqual(readState(opened.stateDir).backoff, {});
  const written = readFileSync(path.join(state, 'state.json'), 'utf8');
  keepBooks(settings, ctx, opened, report, failing);
  assert.equal(readFileSync(path.join(state, 'state.json'), 'utf8'), written);
  assert.equal(readHistory(opened.stateDir).length, 1, 'recorded once');
});

test('events left waiting put the caps in force: the oldest beyond them are dropped, and counted for the next event', (t) => {
  const { ctx, settings, opened } = setUp(t);
  const many = Array.from({ length: 1005 }, (_, i) => ({ ...EVENT, uuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, timestamp: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString() }));
  for (const event of many) store(opened.outbox, event);
  const report = newReport();
  report.leftWaiting = true;
  keepBooks(settings, ctx, opened, report, emptyState());
  const waiting = waitingEvents(opened.stateDir.dir).map((event) => event.uuid);
  assert.equal(waiting.length, 1000);
  assert.ok(!waiting.includes(many[0].uuid), 'the oldest went');
  assert.equal(readState(opened.stateDir).dropped, 5);
});

test('the wire lines go to the log file in one append, in order', (t) => {
  const logFile = path.join(tempDir(t), 'wire.jsonl');
  const { ctx, settings, opened } = setUp(t, logFile);
  const report = newReport();
  report.wire.push('{"a":1}', '{"b":2}');
  keepBooks(settings, ctx, opened, report, emptyState());
  assert.equal(readFileSync(logFile, 'utf8'), '{"a":1}\n{"b":2}\n');
});
