// Reference row of `npm run bench`: the least a `--background` caller can cost, a process that
// does nothing but start a detached `node -e 0` and exit (node:child_process, as the product).
// Argument: a marker put on the child's command line, so the bench finds the child and waits
// for it (untimed) before the next run, as it does for the product's detached sender.
'use strict';
const { spawn } = require('node:child_process');
spawn(process.execPath, ['-e', '0', process.argv[2]], { detached: true, stdio: 'ignore' }).unref();
