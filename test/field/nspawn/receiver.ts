import { startEndpoint, type Endpoint } from '../../../scripts/endpoint.ts';

export interface Event {
  event: string;
  uuid: string;
  properties: Record<string, unknown>;
}

/**
 * The local capture endpoint on a fixed 127.0.0.1 port that can go down and come back on the
 * same port, as a real receiver does; what it received survives its restarts.
 */
export class Receiver {
  private current: Endpoint | undefined;
  private earlier: Event[] = [];
  private earlierRequests = 0;
  private port = 0;

  async up(): Promise<void> {
    this.current = await startEndpoint({ kind: 'accept' }, { port: this.port });
    this.port = Number(new URL(this.current.url).port);
  }

  async down(): Promise<void> {
    if (!this.current) return;
    this.earlier.push(...this.received(this.current));
    this.earlierRequests += this.current.requests.length;
    await this.current.close();
    this.current = undefined;
  }

  /** The URL, which stays the same across down() and up(). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  events(kind?: string): Event[] {
    const all = [...this.earlier, ...(this.current ? this.received(this.current) : [])];
    return kind === undefined ? all : all.filter((event) => event.event === kind);
  }

  /** How many requests reached it, valid or not. */
  requestCount(): number {
    return this.earlierRequests + (this.current?.requests.length ?? 0);
  }

  private received(endpoint: Endpoint): Event[] {
    return endpoint.events() as unknown as Event[];
  }
}
