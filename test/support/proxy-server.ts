import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

/**
 * A small CONNECT proxy for tests. It resolves names itself from `names` (as a proxy on the edge
 * of a network resolves what the clients behind it cannot), else tunnels to loopback targets
 * only. It records every request line; a plain (absolute-URI) request is recorded and refused,
 * since nothing the product sends may reach a proxy outside a tunnel.
 */
export interface TestProxy {
  url: string;
  seen: string[];
  close(): Promise<void>;
}

export interface ProxyOptions {
  host?: string;
  port?: number;
  /** Name -> address, the proxy's own hosts file; the port is the one asked for. */
  names?: Readonly<Record<string, string>>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1)$/;

export async function startProxy({ host = '127.0.0.1', port = 0, names = {} }: ProxyOptions = {}): Promise<TestProxy> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  };
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(403).end();
  });
  server.on('connection', track);
  server.on('connect', (req, client: Socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    const authority = req.url ?? '';
    const colon = authority.lastIndexOf(':');
    const name = authority.slice(0, colon).replace(/^\[|\]$/g, '');
    const address = Object.hasOwn(names, name) ? names[name] : LOOPBACK.test(name) ? name : undefined;
    if (address === undefined) return void client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    const upstream = connect(Number(authority.slice(colon + 1)), address, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    track(upstream);
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
