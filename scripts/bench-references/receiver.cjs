// The capture receiver of `npm run bench`, in a process of its own so the timing process does
// no server work while a run is timed. Three servers on 127.0.0.1 (or the address the first
// IPC message names: the far side of the bench's delay line): https (the certificate whose paths
// arrive in that message), http, and one that reads a request and never answers. It answers
// 200 {"status":1} at once, then counts the events it carried, so counting costs the client
// nothing. It exits when the bench disconnects, however the bench ended.
'use strict';
const http = require('node:http');
const https = require('node:https');
const { readFileSync } = require('node:fs');
const { gunzipSync } = require('node:zlib');

const CAPTURE_PATHS = new Set(['/capture/', '/batch/']);
const received = { https: { requests: 0, events: 0 }, http: { requests: 0, events: 0 }, hanging: { requests: 0, events: 0 } };

function eventsIn(body, encoding) {
  try {
    const parsed = JSON.parse((encoding === 'gzip' ? gunzipSync(body) : body).toString('utf8'));
    return Array.isArray(parsed.batch) ? parsed.batch.length : 1;
  } catch {
    return 0;
  }
}

function answering(counts) {
  return (req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      counts.requests++;
      if (req.method !== 'POST' || !CAPTURE_PATHS.has(req.url)) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"status":0}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":1}');
      counts.events += eventsIn(Buffer.concat(chunks), req.headers['content-encoding']);
    });
  };
}

const listening = (server, host) => new Promise((resolve) => server.listen(0, host, () => resolve(server.address().port)));

process.once('message', async ({ key, cert, host = '127.0.0.1' }) => {
  const secure = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, answering(received.https));
  const plain = http.createServer(answering(received.http));
  const hanging = http.createServer((req) => {
    received.hanging.requests++;
    req.resume();
  });
  const ports = { https: await listening(secure, host), http: await listening(plain, host), hanging: await listening(hanging, host) };
  process.on('message', () => process.send({ received }));
  process.send({ ports });
});
process.on('disconnect', () => process.exit(0));
