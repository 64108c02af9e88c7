// The far-away receiver of `npm run bench`: a TCP forwarder on 127.0.0.1, in a process of its
// own, that passes every chunk on to the receiver's port (127.0.0.1 too) only after holding it
// for a while, in each direction, so a round trip through it costs twice the hold. Clients
// connect to its port directly: no proxy protocol, and TLS runs end to end, untouched.
// The first IPC message names the port to forward to and the hold in ms; it answers with its own
// port. It exits when the bench disconnects, however the bench ended.
'use strict';
const net = require('node:net');

/** Chunks held the same time leave in the order they came (Node fires equal timers in order), the end after them. */
function relay(from, to, holdMs) {
  from.on('data', (chunk) => setTimeout(() => to.destroyed || to.write(chunk), holdMs));
  from.on('end', () => setTimeout(() => to.destroyed || to.end(), holdMs));
}

process.once('message', ({ port, holdMs }) => {
  // Half-open sockets, so a client's end does not cut off the answer still being held.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      // Nagle would hold small chunks longer than the hold itself.
      socket.setNoDelay(true);
      socket.on('error', closeBoth);
    }
    relay(client, upstream, holdMs);
    relay(upstream, client, holdMs);
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
});
process.on('disconnect', () => process.exit(0));
