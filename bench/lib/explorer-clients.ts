import { Agent, type ClientRequest, type IncomingMessage, request } from 'node:http';
import { z } from 'zod';

/**
 * Open explorers, as the bench emulates them: what a browser on the explorer receives and does, without
 * the browser. Each one opens the page's live feed, `GET /api/explorer/live`, with every commande's changes
 * and the overview (`changes=all&overview=1`: the orders list's feed and the overview's in one stream, the
 * most one page can ask for), reads every message, parses it with JSON.parse and validates it, and reacts
 * as the page does:
 * - at open, it fetches the order machine (`GET /api/explorer/machine`), once per page load in the page;
 * - on a `reset`, or a `changes` message marked truncated (changes were left out), it reloads the orders
 *   list (`GET /api/explorer/commandes?limit=100`), at most once a second, as the orders list does;
 * - when the stream ends, it reconnects after the server's `retry:` delay with `Last-Event-ID`, as the
 *   page's reader does.
 * Every request carries the staff token in its Authorization header, as the page sends it (a staff
 * explorer: the overview is staff's only). The overview page itself polls nothing: its once-a-second
 * reading comes over the same stream.
 */

const changeSchema = z.object({
  position: z.number().int(),
  commande_id: z.string(),
  event_type: z.string(),
  version: z.number().int(),
  timestamp: z.string(),
  from: z.string().nullable(),
  statut: z.string().nullable(),
  final: z.boolean(),
  client_id: z.number().int().nullable(),
  magasin_id: z.number().int().nullable(),
  total: z.number().nullable(),
});
const changesSchema = z.object({ truncated: z.boolean(), changes: z.array(changeSchema) });
const overviewSchema = z.looseObject({
  at: z.string(),
  position: z.number().int(),
  states: z.record(z.string(), z.number()).nullable(),
  groups: z.array(z.looseObject({ group: z.string(), stream: z.string() })),
  deadLetters: z.number().nullable(),
  traffic: z.looseObject({}),
});
const helloSchema = z.object({ position: z.number().int() });
const resetSchema = z.object({ reason: z.string() });

/** What one explorer received and did. */
export interface ExplorerCounts {
  bytes: number;
  /** Server-sent events dispatched (keep-alive comments are not messages). */
  messages: number;
  changesMessages: number;
  overviews: number;
  /** Changes of events at positions past the counting start, each position once. */
  changes: number;
  /** Commandes whose final event (one of `finalEvents`) it was told of, past the counting start. */
  finals: number;
  truncatedMessages: number;
  resets: number;
  reconnects: number;
  /** Orders list reloads it made, as the page does after a reset or a truncated message. */
  reloads: number;
  /** Messages it could not parse or validate: should be 0. */
  invalid: number;
}

const RELOAD_AT_MOST_EVERY_MS = 1_000;

class ExplorerClient {
  private readonly counts: ExplorerCounts = emptyCounts();
  private readonly positions = new Set<number>();
  private readonly finalCommandes = new Set<string>();
  private countFrom = Number.POSITIVE_INFINITY;
  private lastEventId: string | null = null;
  private retryMs = 1_000;
  private buffer = '';
  private current: ClientRequest | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private helloed: (() => void) | null = null;
  readonly hello: Promise<void>;

  constructor(
    private readonly url: URL,
    private readonly agent: Agent,
    private readonly lookups: Agent,
    private readonly authorization: Record<string, string>,
    private readonly finalEvents: ReadonlySet<string>,
  ) {
    this.hello = new Promise((resolve) => {
      this.helloed = resolve;
    });
  }

  open(): void {
    void this.fetch('/api/explorer/machine');
    this.connect();
  }

  /** Counts from here: only changes at positions after `position` count as changes and finals. */
  startCounting(position: number): void {
    Object.assign(this.counts, emptyCounts());
    this.positions.clear();
    this.finalCommandes.clear();
    this.countFrom = position;
  }

  snapshot(): ExplorerCounts {
    return { ...this.counts, changes: this.positions.size, finals: this.finalCommandes.size };
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.current?.destroy();
  }

  private connect(): void {
    const headers: Record<string, string> = {
      accept: 'text/event-stream',
      'cache-control': 'no-cache',
      ...this.authorization,
    };
    if (this.lastEventId !== null) headers['last-event-id'] = this.lastEventId;
    this.buffer = '';
    const req = request(
      {
        host: this.url.hostname,
        port: this.url.port,
        path: '/api/explorer/live?changes=all&overview=1',
        agent: this.agent,
        headers,
      },
      (res) => this.follow(res),
    );
    req.on('error', () => this.reconnectLater());
    req.end();
    this.current = req;
  }

  private follow(res: IncomingMessage): void {
    if (res.statusCode !== 200) {
      this.counts.invalid += 1;
      res.resume();
      this.reconnectLater();
      return;
    }
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      this.counts.bytes += Buffer.byteLength(chunk);
      this.buffer += chunk;
      let end = this.buffer.indexOf('\n\n');
      while (end >= 0) {
        this.dispatch(this.buffer.slice(0, end));
        this.buffer = this.buffer.slice(end + 2);
        end = this.buffer.indexOf('\n\n');
      }
    });
    res.on('end', () => this.reconnectLater());
    res.on('error', () => this.reconnectLater());
  }

  private reconnectLater(): void {
    if (this.closed || this.reconnectTimer) return;
    this.counts.reconnects += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed) this.connect();
    }, this.retryMs);
  }

  /** One block of an event stream, as EventSource reads it. */
  private dispatch(block: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') this.lastEventId = value;
      else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    }
    if (data.length === 0) return;
    this.counts.messages += 1;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.join('\n'));
    } catch {
      this.counts.invalid += 1;
      return;
    }
    switch (event) {
      case 'hello':
        this.check(helloSchema.safeParse(parsed).success);
        this.helloed?.();
        this.helloed = null;
        return;
      case 'changes':
        this.onChanges(parsed);
        return;
      case 'overview':
        this.counts.overviews += 1;
        this.check(overviewSchema.safeParse(parsed).success);
        return;
      case 'reset':
        this.counts.resets += 1;
        this.check(resetSchema.safeParse(parsed).success);
        this.reloadSoon();
        return;
      default:
        this.counts.invalid += 1;
    }
  }

  private onChanges(parsed: unknown): void {
    this.counts.changesMessages += 1;
    const message = changesSchema.safeParse(parsed);
    if (!message.success) {
      this.counts.invalid += 1;
      return;
    }
    if (message.data.truncated) {
      this.counts.truncatedMessages += 1;
      this.reloadSoon();
    }
    for (const change of message.data.changes) {
      if (change.position <= this.countFrom) continue;
      this.positions.add(change.position);
      if (this.finalEvents.has(change.event_type)) this.finalCommandes.add(change.commande_id);
    }
  }

  private check(valid: boolean): void {
    if (!valid) this.counts.invalid += 1;
  }

  private reloadSoon(): void {
    this.reloadTimer ??= setTimeout(() => {
      this.reloadTimer = null;
      if (this.closed) return;
      this.counts.reloads += 1;
      void this.fetch('/api/explorer/commandes?limit=100');
    }, RELOAD_AT_MOST_EVERY_MS);
  }

  /** A GET as the page makes it; anything but a 200 counts as invalid. */
  private fetch(path: string): Promise<void> {
    return new Promise((resolve) => {
      const req = request(
        {
          host: this.url.hostname,
          port: this.url.port,
          path,
          agent: this.lookups,
          headers: { accept: 'application/json', ...this.authorization },
        },
        (res) => {
          if (res.statusCode !== 200) this.counts.invalid += 1;
          res.resume();
          res.on('end', resolve);
          res.on('error', resolve);
        },
      );
      req.on('error', () => {
        this.counts.invalid += 1;
        resolve();
      });
      req.end();
    });
  }
}

function emptyCounts(): ExplorerCounts {
  return {
    bytes: 0,
    messages: 0,
    changesMessages: 0,
    overviews: 0,
    changes: 0,
    finals: 0,
    truncatedMessages: 0,
    resets: 0,
    reconnects: 0,
    reloads: 0,
    invalid: 0,
  };
}

/** `count` open explorers on one choreo. */
export class ExplorerCrowd {
  private readonly clients: ExplorerClient[];
  private readonly agent = new Agent({ keepAlive: false });
  private readonly lookups = new Agent({ keepAlive: true });
  private countingSince = 0;

  private constructor(baseUrl: string, count: number, finalEvents: readonly string[], token: string) {
    const url = new URL(baseUrl);
    const finals = new Set(finalEvents);
    const authorization = { authorization: `Bearer ${token}` };
    this.clients = Array.from(
      { length: count },
      () => new ExplorerClient(url, this.agent, this.lookups, authorization, finals),
    );
  }

  /**
   * Opens them all and resolves once each has its `hello` (the feed subscribed it). `token`: the staff
   * token of that choreo (by default CHOREO_ADMIN_TOKEN, which the bench gives the processes it starts).
   */
  static async open(
    baseUrl: string,
    count: number,
    finalEvents: readonly string[],
    timeoutMs = 10_000,
    token = process.env.CHOREO_ADMIN_TOKEN,
  ): Promise<ExplorerCrowd> {
    if (token === undefined || token === '') {
      throw new Error("open explorers need choreo's staff token (CHOREO_ADMIN_TOKEN)");
    }
    const crowd = new ExplorerCrowd(baseUrl, count, finalEvents, token);
    for (const client of crowd.clients) client.open();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${count} explorers were not all subscribed after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([Promise.all(crowd.clients.map((client) => client.hello)), timeout]);
    } catch (error) {
      crowd.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return crowd;
  }

  get size(): number {
    return this.clients.length;
  }

  startCounting(position: number): void {
    this.countingSince = performance.now();
    for (const client of this.clients) client.startCounting(position);
  }

  /** Each explorer's counts since `startCounting`, and the seconds since. */
  snapshot(): { seconds: number; counts: ExplorerCounts[] } {
    return {
      seconds: (performance.now() - this.countingSince) / 1_000,
      counts: this.clients.map((client) => client.snapshot()),
    };
  }

  /**
   * Polls until every explorer was told of `changes` changes and `finals` final events, or the deadline;
   * resolves with the counts then (those that fell short stay short).
   */
  async waitFor(changes: number, finals: number, timeoutMs: number): Promise<ExplorerCounts[]> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const counts = this.clients.map((client) => client.snapshot());
      const all = counts.every((count) => count.changes >= changes && count.finals >= finals);
      if (all || performance.now() > deadline) return counts;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  close(): void {
    for (const client of this.clients) client.close();
    this.lookups.destroy();
    this.agent.destroy();
  }
}
