import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMON_PROPERTIES, noticeVersion, noticeVersionOf, PROPERTIES } from '../../../../src/after-consent/collect/properties.ts';
import { disposition, ID_SALT, emptyState, forgetIdentity, mayUpload, noticeShownFor, parseState, withIdentity, withNoticeShown, type DispositionInput, type Disposition, type State } from '../../../../src/after-consent/store/state.ts';

/** What the state file means for telling the user, local-only mode and the id: pure, no disk. */

const SALT = 'c'.repeat(64);
const told = (version: string): State => withNoticeShown(emptyState(), '2026-01-02T03:04:05.000Z', version);

test('what a run does with an admitted event, for every combination that decides it', () => {
  const rows: [DispositionInput, Disposition][] = [
    // Local-only wins over everything: recorded, never uploaded, and no notice is needed.
    [{ local: true, canTell: true, told: false, noticeRequired: true }, 'record'],
    [{ local: true, canTell: false, told: true, noticeRequired: false }, 'record'],
    // Told already (this version): sent, wherever it runs.
    [{ local: false, canTell: true, told: true, noticeRequired: false }, 'send'],
    [{ local: false, canTell: false, told: true, noticeRequired: true }, 'send'],
    // A person can be told and was not: told now, and this run sends nothing.
    [{ local: false, canTell: true, told: false, noticeRequired: false }, 'tell'],
    [{ local: false, canTell: true, told: false, noticeRequired: true }, 'tell'],
    // No one can be told: as before, unless the vendor requires the notice first.
    [{ local: false, canTell: false, told: false, noticeRequired: false }, 'send'],
    [{ local: false, canTell: false, told: false, noticeRequired: true }, 'hold'],
  ];
  for (const [input, expected] of rows) assert.equal(disposition(input), expected, JSON.stringify(input));
});

test('the notice counts as shown only for the version that was shown', () => {
  const rows: [State, string, boolean][] = [
    [emptyState(), 'v1', false],
    [told('v1'), 'v1', true],
    [told('v1'), 'v2', false],
  ];
  for (const [state, version, expected] of rows) assert.equal(noticeShownFor(state, version), expected, `${JSON.stringify(state)} ${version}`);
});

test('what waits may be uploaded unless the vendor requires a notice not yet shown', () => {
  const rows: [State, boolean, boolean][] = [
    [emptyState(), false, true],
    [emptyState(), true, false],
    [told('v0'), true, false],
    [told('v1'), true, true],
  ];
  for (const [state, required, expected] of rows) assert.equal(mayUpload(state, 'v1', required), expected, `${JSON.stringify(state)} required=${required}`);
});

test('the salt and the random id are made once and kept; disable forgets them, and nothing else', () => {
  const ids = ['aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', '11111111-2222-4333-8444-555555555555'];
  const first = withIdentity(emptyState(), () => ids.shift()!);
  assert.match(first.idSalt ?? '', ID_SALT, 'two UUIDs, hex');
  assert.equal(first.distinctId, '11111111-2222-4333-8444-555555555555');
  assert.equal(withIdentity(first, () => 'cccccccc-cccc-4ccc-8ccc-cccccccccccc'), first, 'two first runs at once: the first kept stays');
  const saltOnly = withIdentity({ ...emptyState(), idSalt: SALT }, () => '22222222-2222-4222-8222-222222222222');
  assert.deepEqual([saltOnly.idSalt, saltOnly.distinctId], [SALT, '22222222-2222-4222-8222-222222222222'], 'a state from before keeps its salt and gains the id');
  const used = { ...told('v1'), ...first, dropped: 3 };
  const forgotten = forgetIdentity(used);
  assert.equal(forgotten.idSalt, undefined);
  assert.equal(forgotten.distinctId, undefined);
  assert.deepEqual({ ...forgotten }, { ...told('v1'), dropped: 3 }, 'the notice and the counts stay');
});

test('the state file keeps the salt and the notice only as a run of ours writes them', () => {
  const rows: [Record<string, unknown>, Partial<State>][] = [
    [{ idSalt: SALT, noticeShown: 'at', noticeVersion: 'v1' }, { idSalt: SALT, noticeShown: 'at', noticeVersion: 'v1' }],
    [{ idSalt: 'short' }, {}],
    [{ idSalt: SALT.toUpperCase() }, {}],
    // A notice with no version was shown before the notice had versions: not this one.
    [{ noticeShown: 'at' }, {}],
    [{ noticeShown: 'at', noticeVersion: 7 }, {}],
  ];
  for (const [raw, kept] of rows) {
    const state = parseState(JSON.stringify(raw));
    assert.deepEqual({ idSalt: state.idSalt, noticeShown: state.noticeShown, noticeVersion: state.noticeVersion }, { idSalt: undefined, noticeShown: undefined, noticeVersion: undefined, ...kept }, JSON.stringify(raw));
  }
});

test('the notice version follows the set of property names: a new property changes it, their order does not', () => {
  const names = Object.keys(PROPERTIES);
  assert.equal(noticeVersion(), noticeVersionOf(names));
  assert.equal(noticeVersionOf([...names].reverse()), noticeVersion());
  assert.notEqual(noticeVersionOf([...names, 'host_disk_bytes']), noticeVersion());
  assert.notEqual(noticeVersionOf(names.slice(1)), noticeVersion());
  assert.match(noticeVersion(), /^[0-9a-f]{12}$/);
  assert.ok(COMMON_PROPERTIES.includes('distinct_id') && !COMMON_PROPERTIES.includes('exit_code'));
});
