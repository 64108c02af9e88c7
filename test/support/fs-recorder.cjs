// Preloaded by a test to prove an opted-out run reads nothing: every path the public fs API is
// asked about is appended to FS_RECORD (one per line).
'use strict';
const fs = require('node:fs');
const record = process.env.FS_RECORD;
const append = fs.appendFileSync;
let recording = false; // appendFileSync itself calls fs.openSync on some Node versions
for (const name of ['openSync', 'readFileSync', 'statSync', 'lstatSync', 'existsSync', 'readdirSync', 'readlinkSync', 'accessSync']) {
  const original = fs[name];
  fs[name] = function (target, ...rest) {
    if (!recording && (typeof target === 'string' || target instanceof URL)) {
      recording = true;
      try {
        append.call(fs, record, `${name} ${String(target)}\n`);
      } finally {
        recording = false;
      }
    }
    return original.call(this, target, ...rest);
  };
}
