// Floor of `npm run bench`'s flush row: what a flush of the outbox must do at least, by hand.
// It reads every event file in the folder (the flush row's <state>/outbox/new/), parses them,
// gzips them as one PostHog /batch/ request (the API key once, in the envelope) and POSTs it
// over https, then exits. Arguments: the folder, the /batch/ URL. It trusts the bench's test CA
// the way the product does, through NODE_EXTRA_CA_CERTS.
'use strict';
const { readdirSync, readFileSync } = require('node:fs');
const https = require('node:https');
const path = require('node:path');
const { gzipSync } = require('node:zlib');

const [folder, url] = process.argv.slice(2);
const events = readdirSync(folder).map((name) => JSON.parse(readFileSync(path.join(folder, name), 'utf8')));
const envelope = { api_key: events[0].api_key, sent_at: new Date().toISOString(), batch: events.map(({ api_key: _key, ...event }) => event) };
const body = gzipSync(JSON.stringify(envelope));
const headers = { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': body.length };
const request = https.request(url, { method: 'POST', agent: false, headers }, (response) => {
  response.resume();
  response.on('end', () => process.exit(response.statusCode === 200 ? 0 : 1));
});
request.on('error', () => process.exit(1));
request.end(body);
