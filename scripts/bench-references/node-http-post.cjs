// Reference for `npm run bench`: the least a Node POST can cost (the "hand-written node:http").
'use strict';
const http = require('node:http');
const request = http.request(process.argv[2], { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (response) => {
  response.resume();
  response.on('end', () => process.exit(0));
});
request.end(JSON.stringify({ api_key: 'k', event: 'start', properties: { distinct_id: 'x' } }));
