import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  afterFailure,
  afterSuccess,
  BACKOFF_MAX_MS,
  countsOf,
  countsTaken,
  droppedMore,
  emptyState,
  EXECUTION_TTL_MS,
  linkEvent,
  nextAttempt,
  parseState,
  suppressedOne,
  type State,
} from '../../../../src/after-consent/store/state.ts';

/** What state.json means, as tables of pure transitions: no disk, no clock but the one given. */

const RUN = '11111111-1111-4111-8111-111111111111';
const NEW_RUN = '22222222-2222-4222-8222-222222222222';
const EXECUTION = '33333333-3333-4333-8333-333333333333';
const NOW = 1_800_000_000_000;
const state = (changes: Partial<State> = {}): State => ({ ...emptyState(), ...changes });
const newId = () => NEW_RUN;

test('runs: start begins one and says how the last ended; stop and fatal end it; cloud events carry it', () => {
  const rows: { name: string; before: State; event: Parameters<typeof linkEvent>[0]; properties: Record<string, unknown>; run?: State['run'] }[] = [
    { name: 'first start', before: state(), event: 'start', properties: { run_id: NEW_RUN, previous_run_end: 'none' }, run: { id: NEW_RUN, started: NOW } },
    { name: 'start after a stop', before: state({ run: { id: RUN, started: 0, ended: 'stop' } }), event: 'start', properties: { run_id: NEW_RUN, previous_run_end: 'stop' }, run: { id: NEW_RUN, started: NOW } },
    { name: 'start after a run that ended unreported', before: state({ run: { id: RUN, started: 0 } }), event: 'start', properties: { run_id: NEW_RUN, previous_run_end: 'unknown' }, run: { id: NEW_RUN, started: NOW } },
    { name: 'stop', before: state({ run: { id: RUN, started: NOW - 90_000 } }), event: 'stop', properties: { run_id: RUN, run_uptime_s: 90 }, run: { id: RUN, started: NOW - 90_000, ended: 'stop' } },
    { name: 'fatal after a stop keeps the stop', before: state({ run: { id: RUN, started: NOW, ended: 'stop' } }), event: 'fatal', properties: { run_id: RUN, run_uptime_s: 0 }, run: { id: RUN, started: NOW, ended: 'stop' } },
    { name: 'stop with no run known', before: state(), event: 'stop', properties: {}, run: undefined },
    { name: 'a stop dated before its start', before: state({ run: { id: RUN, started: NOW + 5000 } }), event: 'stop', properties: { run_id: RUN, run_uptime_s: 0 }, run: { id: RUN, started: NOW + 5000, ended: 'stop' } },
    { name: 'cloud-unavailable in a run', before: state({ run: { id: RUN, started: 0 } }), event: 'cloud-unavailable', properties: { run_id: RUN }, run: { id: RUN, started: 0 } },
    { name: 'install changes nothing', before: state(), event: 'install', properties: {}, run: undefined },
  ];
  for (const row of rows) {
    const linked = linkEvent(row.event, row.before, NOW, {}, newId);
    assert.deepEqual(linked.properties, row.properties, row.name);
    assert.deepEqual(linked.state.run, row.run, row.name);
  }
});

test('executions: a start records one, an end carries and forgets it, an action carries its name; stale ones go', () => {
  const started = linkEvent('command-start', state(), NOW, { execution_id: EXECUTION, command_name: 'converge', command_flags: ['repo'], command_env_options: [] }, newId).state;
  assert.deepEqual(started.executions[EXECUTION], { name: 'converge', flags: ['repo'], envOptions: [], started: NOW });
  assert.deepEqual(linkEvent('command-action', started, NOW, { execution_id: EXECUTION }, newId).properties, { execution_id: EXECUTION, command_name: 'converge' });
  const ended = linkEvent('command-end', started, NOW + 1500, { execution_id: EXECUTION, exit_code: 0 }, newId);
  assert.deepEqual(ended.properties, { execution_id: EXECUTION, exit_code: 0, command_name: 'converge', command_flags: ['repo'], command_env_options: [], duration_ms: 1500 });
  assert.deepEqual(ended.state.executions, {});
  assert.deepEqual(linkEvent('command-action', state(), NOW, { execution_id: EXECUTION }, newId).properties.command_name, 'unknown', 'an unknown id is sent with what is known');
  const old = state({ executions: { [RUN]: { name: 'old', flags: [], envOptions: [], started: NOW - EXECUTION_TTL_MS } } });
  assert.deepEqual(Object.keys(linkEvent('command-start', old, NOW, { execution_id: EXECUTION, command_name: 'x', command_flags: [], command_env_options: [] }, newId).state.executions), [EXECUTION]);
});

test('counts ride on the next event created, then start again from zero', () => {
  const counted = droppedMore(suppressedOne(suppressedOne(state())), 3);
  assert.deepEqual(countsOf(counted), { queue_dropped: 3, suppressed_events: 2 });
  assert.deepEqual(countsOf(countsTaken(counted)), { queue_dropped: 0, suppressed_events: 0 });
});

test('back-off: doubles per failure within the jitter, honours Retry-After, stops at the ceiling, clears on success', () => {
  const endpoint = 'https://e.test/';
  const rows: [string, State, number, number | undefined, number][] = [
    // name, before, random in [0, 1), Retry-After ms, expected delay
    ['first failure, no jitter', state(), 0.5, undefined, 30_000],
    ['first failure, least jitter', state(), 0, undefined, 15_000],
    ['third failure', state({ backoff: { [endpoint]: { failures: 2, next: 0 } } }), 0.5, undefined, 120_000],
    ['Retry-After longer than the back-off', state(), 0.5, 600_000, 600_000],
    ['Retry-After past the ceiling', state(), 0.5, 10 * BACKOFF_MAX_MS, BACKOFF_MAX_MS],
    ['the 64th failure', state({ backoff: { [endpoint]: { failures: 63, next: 0 } } }), 0.99, undefined, BACKOFF_MAX_MS],
  ];
  for (const [name, before, random, retryAfter, delay] of rows) {
    const after = afterFailure(before, endpoint, NOW, random, retryAfter);
    assert.equal(nextAttempt(after, endpoint, NOW), NOW + delay, name);
  }
  const failing = afterFailure(state(), endpoint, NOW, 0.5, undefined);
  assert.deepEqual(afterSuccess(failing, endpoint).backoff, {});
  assert.equal(afterSuccess(state(), endpoint).backoff[endpoint], undefined);
  const planted = state({ backoff: { [endpoint]: { failures: 1, next: NOW + BACKOFF_MAX_MS + 1 } } });
  assert.equal(nextAttempt(planted, endpoint, NOW), 0, 'a next attempt further off than the ceiling was not set by a run whose clock agreed');
});

test('only what a run of ours could have written survives reading', () => {
  const rows: [string, string, Partial<State>][] = [
    ['not JSON', '{"dropped": 3', {}],
    ['an array', '[1,2]', {}],
    ['negative and fractional counts', '{"dropped": -1, "suppressed": 1.5}', {}],
    ['a run id that is no UUID', `{"run": {"id": "../x", "started": 1}}`, {}],
    ['a run without a start', `{"run": {"id": "${RUN}"}}`, {}],
    ['a whole run', `{"run": {"id": "${RUN}", "started": 5, "ended": "fatal"}}`, { run: { id: RUN, started: 5, ended: 'fatal' } }],
    ['an unknown ending', `{"run": {"id": "${RUN}", "started": 5, "ended": "exploded"}}`, { run: { id: RUN, started: 5 } }],
    ['a back-off without its time', '{"backoff": {"x": {"failures": 2}}}', {}],
    ['a distinct id that is no UUID', '{"distinctId": "alice"}', {}],
    ['an execution with foreign flags', `{"executions": {"e": {"name": "n", "started": 1, "flags": ["a", 2]}}}`, { executions: { e: { name: 'n', started: 1, flags: ['a'], envOptions: [] } } }],
  ];
  for (const [name, text, expected] of rows) assert.deepEqual(parseState(text), state(expected), name);
});
