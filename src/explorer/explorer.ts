import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { inProcessStaffHeaders } from '../api/auth/access-control.js';
import type { BusKind } from '../config.js';
import type { Pool } from '../persistence/database.js';
import type { EventStoreNotifier } from '../persistence/event-store-notifier.js';
import { DemoLoad } from './demo-load.js';
import type { ApiCall } from './demo-shop.js';
import { type ActorControl, explorerApiRoutes } from './explorer-api-routes.js';
import { explorerPageRoutes } from './explorer-page-routes.js';
import { LiveFeed } from './live-feed.js';
import { ProcessRegistry } from './process-registry.js';

export interface ExplorerDependencies {
  http: FastifyInstance;
  pool: Pool;
  notifier: EventStoreNotifier;
  registry: Registry;
  logger: Logger;
  bus: BusKind;
  actors: ActorControl;
}

/**
 * The demo load calls the API of its own process, through fastify's inject (no socket, same routes), as
 * staff: with the token that never leaves this process.
 */
function injectedApi(http: FastifyInstance): ApiCall {
  return async (method, url, body, headers) => {
    const response = await http.inject({
      method,
      url,
      headers: {
        ...inProcessStaffHeaders(http),
        ...headers,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    const text = response.body;
    return { status: response.statusCode, body: text === '' ? null : (JSON.parse(text) as unknown) };
  };
}

/**
 * The explorer of one process (/explorer): its page and API, the live feed every open page shares, this
 * process's heartbeat in `choreo_processes`, and the demo load.
 */
export class Explorer {
  private constructor(
    private readonly feed: LiveFeed,
    private readonly processes: ProcessRegistry,
    private readonly demo: DemoLoad,
  ) {}

  /** Registers the routes on the process's app (before it listens); nothing runs until `start`. */
  static async register(dependencies: ExplorerDependencies): Promise<Explorer> {
    const { http, pool, notifier, registry, logger, bus, actors } = dependencies;
    const processId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const feed = new LiveFeed({ pool, notifier, registry, logger: logger.child({ component: 'explorer' }) });
    const processes = new ProcessRegistry(processId, {
      pool,
      bus,
      logger,
      actorStates: () => actors.actorStates(),
    });
    const demo = new DemoLoad(pool, injectedApi(http), logger);
    await http.register(explorerPageRoutes);
    await http.register(explorerApiRoutes, { pool, feed, processes, actors, demo });
    // Open event streams would hold the server's close forever: they end first.
    http.addHook('preClose', async () => {
      await demo.stop();
      await feed.close();
    });
    return new Explorer(feed, processes, demo);
  }

  start(): void {
    this.processes.start();
  }

  /** Where this process's API answers, for the other processes' explorers. */
  announce(apiUrl: string): void {
    this.processes.announce(apiUrl);
  }

  /** After the HTTP server closed (which ended the event streams), before the pool ends. */
  async stop(): Promise<void> {
    await this.demo.stop();
    await this.feed.close();
    await this.processes.stop();
  }
}
