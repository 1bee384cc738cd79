import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { eventsOf } from '../../../test/support/commande-events.js';
import { ServiceFixture } from '../../../test/support/service-fixture.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { TransitionRefusedError } from '../../domain/errors.js';
import type { NewEvent } from '../../domain/events.js';
import { createPool, type Pool, withTransaction } from '../../persistence/database.js';
import { appendToStream, readStream } from '../../persistence/event-store.js';
import { migrate } from '../../persistence/migrate.js';
import {
  assertCommandeAccepts,
  CommandeSession,
  commandeAccepts,
  creationOf,
  loadCommande,
  statutOfCommande,
} from './commande-stream.js';

const paiementAccepte = (client_id: number, magasin_id: number, total: number): NewEvent => ({
  event_type: 'PaiementAccepte',
  source: 'client-service',
  causation_id: null,
  data: { client_id, magasin_id, total },
});

const venteConfirmee = (client_id: number, magasin_id: number, total: number): NewEvent => ({
  event_type: 'VenteConfirmee',
  source: 'ventes-service',
  causation_id: null,
  data: { vente_id: 1, client_id, magasin_id, total },
});

describe('a commande read from its stream and appended to', () => {
  let database: TestDatabase;
  let pool: Pool;
  let fixture: ServiceFixture;
  let clientId: number;
  let magasinId: number;
  let produitId: number;

  beforeAll(async () => {
    database = await createTestDatabase('commande_stream');
    pool = createPool(database.url);
    await migrate(pool);
    fixture = new ServiceFixture(pool);
    clientId = await fixture.client(100);
    magasinId = await fixture.magasin();
    produitId = await fixture.produit(2.5);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  const order = () => fixture.order(clientId, magasinId, [[produitId, 2, 2.5]]);

  async function reservedOrder(): Promise<string> {
    const commandeId = await order();
    await fixture.reserveStock(commandeId);
    return commandeId;
  }

  it('is rehydrated from its events: version, events in order and the state they lead to', async () => {
    const commandeId = await reservedOrder();

    const commande = await withTransaction(pool, (tx) => loadCommande(tx, commandeId));

    expect(commande.commandeId).toBe(commandeId);
    expect(commande.version).toBe(2);
    expect(commande.events.map((event) => event.event_type)).toEqual(['CommandeCreee', 'StockReserve']);
    expect(statutOfCommande(commande)).toBe('stock_reserve');
    expect(creationOf(commande).data).toMatchObject({ client_id: clientId, magasin_id: magasinId, total: 5 });
  });

  it('an unknown commande is at version 0, with no events and no state, and accepts nothing', async () => {
    const loaded = await withTransaction(pool, (tx) => loadCommande(tx, 'cmd-never-created'));
    const inSession = await withTransaction(pool, (tx) => new CommandeSession(tx).load('cmd-never-created'));

    for (const commande of [loaded, inSession]) {
      expect(commande).toMatchObject({ commandeId: 'cmd-never-created', version: 0, events: [] });
      expect(commande.snapshot).toBeNull();
      expect(statutOfCommande(commande)).toBeNull();
      expect(commandeAccepts(commande, 'StockReserve')).toBe(false);
      expect(() => creationOf(commande)).toThrow(
        'commande cmd-never-created does not start with CommandeCreee',
      );
    }
  });

  it('a stream that does not start with CommandeCreee has no creation to give', async () => {
    await appendToStream(pool, 'cmd-without-creation', 0, [paiementAccepte(clientId, magasinId, 5)]);

    const commande = await withTransaction(pool, (tx) => loadCommande(tx, 'cmd-without-creation'));

    expect(() => creationOf(commande)).toThrow(
      'commande cmd-without-creation does not start with CommandeCreee',
    );
  });

  it('preloads several commandes with one statement, each with its own stream, an id given twice among them', async () => {
    const reserved = await reservedOrder();
    const created = await order();

    const { loaded, statements } = await withTransaction(pool, async (tx) => {
      const session = new CommandeSession(tx);
      // Counted only: every statement still reaches PostgreSQL.
      const sent = vi.spyOn(tx, 'query');
      try {
        await session.preload([reserved, created, reserved, 'cmd-unknown']);
        const commandes = await Promise.all([reserved, created, 'cmd-unknown'].map((id) => session.load(id)));
        return { loaded: commandes, statements: sent.mock.calls.length };
      } finally {
        sent.mockRestore();
      }
    });

    expect(statements).toBe(1);
    expect(
      loaded.map((commande) => [commande.commandeId, commande.version, statutOfCommande(commande)]),
    ).toEqual([
      [reserved, 2, 'stock_reserve'],
      [created, 1, 'en_attente_stock'],
      ['cmd-unknown', 0, null],
    ]);
  });

  it('keeps the copy of a commande it already holds rather than reading its stream again', async () => {
    // The session's copy is the commande as this transaction saw it first; a write by another
    // transaction after that makes the table differ from it, which shows whether it was read again.
    const held = await order();
    const other = await order();

    const [heldAfter, heldOnLoad, otherAfter] = await withTransaction(pool, async (tx) => {
      const session = new CommandeSession(tx);
      await session.load(held);
      await fixture.reserveStock(held);
      await fixture.reserveStock(other);
      await session.preload([held, other]);
      const heldAfterPreload = await session.load(held);
      await session.preload([held]);
      return [heldAfterPreload, await session.load(held), await session.load(other)];
    });

    expect([heldAfter.version, statutOfCommande(heldAfter)]).toEqual([1, 'en_attente_stock']);
    expect([heldOnLoad.version, statutOfCommande(heldOnLoad)]).toEqual([1, 'en_attente_stock']);
    expect([otherAfter.version, statutOfCommande(otherAfter)]).toEqual([2, 'stock_reserve']);
  });

  it('takes commandes already rehydrated as they are, without reading their streams', async () => {
    // A copy rehydrated before the commande moved on: the session must work on it, not on the table.
    const commandeId = await order();
    const earlier = await withTransaction(pool, (tx) => loadCommande(tx, commandeId));
    await fixture.reserveStock(commandeId);

    const adopted = await withTransaction(pool, async (tx) => {
      const session = new CommandeSession(tx);
      session.adopt([earlier]);
      return session.load(commandeId);
    });

    expect(adopted).toBe(earlier);
  });

  it('seeds the commandes asked for from events read by the caller, passing over those of other commandes', async () => {
    const asked = await reservedOrder();
    const notAsked = await order();
    const stored = [...(await readStream(pool, asked)), ...(await readStream(pool, notAsked))];

    const { seeded, notAskedLoaded } = await withTransaction(pool, async (tx) => {
      const session = new CommandeSession(tx);
      const result = session.seed([asked, 'cmd-new'], stored);
      await appendToStream(tx, notAsked, 1, [paiementAccepte(clientId, magasinId, 5)]);
      // Not seeded, so read from the store now, with the event this transaction just wrote.
      return { seeded: result, notAskedLoaded: await session.load(notAsked) };
    });

    expect(seeded.map((commande) => [commande.commandeId, commande.version])).toEqual([
      [asked, 2],
      ['cmd-new', 0],
    ]);
    expect(notAskedLoaded.version).toBe(2);
  });

  it('an append refused by the order machine throws TransitionRefusedError with the state, and changes nothing', async () => {
    const commandeId = await reservedOrder();

    const { error, after } = await withTransaction(pool, async (tx) => {
      const session = new CommandeSession(tx);
      const commande = await session.load(commandeId);
      const caught = (() => {
        try {
          session.append(commande, venteConfirmee(clientId, magasinId, 5));
          return null;
        } catch (thrown) {
          return thrown;
        }
      })();
      session.flush();
      return { error: caught, after: await session.load(commandeId) };
    });

    expect(error).toBeInstanceOf(TransitionRefusedError);
    expect(error).toMatchObject({
      aggregateId: commandeId,
      eventType: 'VenteConfirmee',
      statut: 'stock_reserve',
    });
    expect([after.version, statutOfCommande(after)]).toEqual([2, 'stock_reserve']);
    expect(await eventsOf(pool, commandeId)).toHaveLength(2);
  });

  it('an append to a commande that does not exist is refused with the state "inexistante"', async () => {
    const error = await withTransaction(pool, async (tx) => {
      const session = new CommandeSession(tx);
      const commande = await session.load('cmd-nowhere');
      try {
        session.append(commande, paiementAccepte(clientId, magasinId, 5));
        return null;
      } catch (thrown) {
        return thrown;
      }
    });

    expect(error).toBeInstanceOf(TransitionRefusedError);
    expect(error).toMatchObject({ aggregateId: 'cmd-nowhere', statut: 'inexistante' });
  });

  it('an accepted append moves the commande one version on at once, and a second one builds on it', async () => {
    const commandeId = await reservedOrder();

    const [afterFirst, afterSecond] = await withTransaction(pool, async (tx) => {
      const session = new CommandeSession(tx);
      session.append(await session.load(commandeId), paiementAccepte(clientId, magasinId, 5));
      const first = await session.load(commandeId);
      session.append(first, venteConfirmee(clientId, magasinId, 5));
      return [first, await session.load(commandeId)];
    });

    expect([afterFirst.version, statutOfCommande(afterFirst)]).toEqual([3, 'paiement_accepte']);
    expect([afterSecond.version, statutOfCommande(afterSecond)]).toEqual([4, 'vente_confirmee']);
    expect(afterSecond.commandeId).toBe(commandeId);
  });

  it('flush writes every event appended, of every commande, at the versions that follow their streams', async () => {
    const reserved = await reservedOrder();
    const created = await order();

    await withTransaction(pool, async (tx) => {
      const session = new CommandeSession(tx);
      await session.preload([reserved, created]);
      session.append(await session.load(reserved), paiementAccepte(clientId, magasinId, 5));
      session.append(await session.load(reserved), venteConfirmee(clientId, magasinId, 5));
      session.append(await session.load(created), {
        event_type: 'StockIndisponible',
        source: 'stock-service',
        causation_id: null,
        data: { client_id: clientId, magasin_id: magasinId, raison: 'stock_insuffisant', manquants: [] },
      });
      session.flush();
    });

    expect((await eventsOf(pool, reserved)).map((event) => [event.version, event.event_type])).toEqual([
      [1, 'CommandeCreee'],
      [2, 'StockReserve'],
      [3, 'PaiementAccepte'],
      [4, 'VenteConfirmee'],
    ]);
    expect((await eventsOf(pool, created)).map((event) => [event.version, event.event_type])).toEqual([
      [1, 'CommandeCreee'],
      [2, 'StockIndisponible'],
    ]);
  });

  it('says which events a commande accepts in its state, and refuses the others with that state', async () => {
    const commandeId = await reservedOrder();

    const commande = await withTransaction(pool, (tx) => loadCommande(tx, commandeId));
    const unknown = await withTransaction(pool, (tx) => loadCommande(tx, 'cmd-none'));

    expect(commandeAccepts(commande, 'PaiementAccepte')).toBe(true);
    expect(commandeAccepts(commande, 'VenteConfirmee')).toBe(false);
    expect(() => assertCommandeAccepts(commande, 'PaiementAccepte')).not.toThrow();
    expect(() => assertCommandeAccepts(commande, 'VenteConfirmee')).toThrow(TransitionRefusedError);
    expect(() => assertCommandeAccepts(commande, 'VenteConfirmee')).toThrow(
      expect.objectContaining({ eventType: 'VenteConfirmee', statut: 'stock_reserve' }),
    );
    expect(() => assertCommandeAccepts(unknown, 'StockReserve')).toThrow(
      expect.objectContaining({ aggregateId: 'cmd-none', statut: 'inexistante' }),
    );
  });
});
