// undici's deep modules carry no types of their own; these re-use the package's public ones.
// They are imported one by one so the bundle leaves out fetch, WebSocket, mocks and caches.
declare module 'undici/lib/dispatcher/client.js' {
  import { Client } from 'undici';
  export default Client;
}
declare module 'undici/lib/api/api-request.js' {
  import type { Dispatcher } from 'undici';
  export default function request(this: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
}
