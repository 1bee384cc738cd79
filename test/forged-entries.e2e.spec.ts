import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { runConservationAudit } from '../src/audit/conservation-audit.js';
import { encodeEnvelope } from '../src/bus/envelope-codec.js';
import { EntrySignature } from '../src/bus/redis-streams/entry-signature.js';
import type { StoredEvent, StreamName } from '../src/domain/events.js';
import { EVENT_COLUMNS, toStoredEvent } from '../src/persistence/event-store.js';
import { busProbe, CONSUMER_GROUPS, groupsReading, streamOf } from './support/bus-probe.js';
import { describeOnBus } from './support/buses.js';
import { type DeadLetter, deadLettersOf } from './support/dead-letters.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

/*
 * Anyone who reaches Redis can XADD to choreo's streams. An entry choreo's relay did not write, however
 * well-formed (a real commande, the next version, a plausible payload), must change nothing: each group
 * that reads its stream sets it aside in the dead letters, with the reason, and counts it.
 */

const auditBody = z.object({ ok: z.boolean(), stock: z.object({ ok: z.boolean() }) });

/** An outsider's own key: an entry signed with it is as forged as an unsigned one. */
const outsiderKey = EntrySignature.fromHex(randomBytes(32).toString('hex'));

interface ForgedEntry {
  stream: StreamName;
  entryId: string;
  eventType: string;
}

/** What an outsider with redis-cli can do: XADD a well-formed envelope, unsigned or signed with its own key. */
async function forge(
  system: TestSystem,
  event: StoredEvent,
  signing: 'unsigned' | 'outsider-signed',
): Promise<ForgedEntry> {
  const stream = streamOf(event.event_type);
  const key = system.streamKey(stream);
  const fields = encodeEnvelope(event);
  const entry = signing === 'unsigned' ? fields : outsiderKey.sign(key, fields);
  const entryId = String(await system.redis.call('XADD', key, '*', ...entry));
  return { stream, entryId, eventType: event.event_type };
}

/** The commande's events as the store holds them. */
async function eventsOf(system: TestSystem, commandeId: string): Promise<StoredEvent[]> {
  const { rows } = await system.choreo.pool.query(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE aggregate_id = $1 ORDER BY version`,
    [commandeId],
  );
  return rows.map(toStoredEvent);
}

/** Once every group but `except` has applied and acknowledged everything on its streams. */
async function settled(system: TestSystem, except: string): Promise<void> {
  const probe = busProbe(system);
  await eventually(
    async () => {
      const busy: string[] = [];
      for (const [group, streams] of CONSUMER_GROUPS) {
        if (group === except) continue;
        for (const stream of streams)
          if ((await probe.eventsWaiting(stream, group)) > 0) busy.push(`${group} ${stream} waiting`);
      }
      for (const held of await probe.eventsInHand())
        if (held.group !== except && held.count > 0) busy.push(`${held.group} ${held.stream} in hand`);
      return busy;
    },
    (busy) => busy.length === 0,
    { description: `every group but ${except} to be done with its streams` },
  );
}

/** The next event a producer of the commande could plausibly append: the version after the last. */
function nextEvent(
  history: StoredEvent[],
  event: { event_type: string; source: string; data: Record<string, unknown> },
): StoredEvent {
  const last = history.at(-1);
  if (!last) throw new Error('a commande with no event');
  return {
    ...event,
    event_id: randomUUID(),
    aggregate_id: last.aggregate_id,
    version: last.version + 1,
    position: last.position + 1,
    timestamp: new Date().toISOString(),
    correlation_id: last.correlation_id,
    causation_id: last.event_id,
  };
}

/** Every table a consumer group writes, as it stands (the event store included). */
async function tables(system: TestSystem): Promise<Record<string, unknown>> {
  const snapshot: Record<string, unknown> = {};
  for (const [table, order] of [
    ['stock', 'magasin_id, produit_id'],
    ['stock_reservations', 'commande_id, produit_id'],
    ['clients', 'id'],
    ['paiements', 'commande_id'],
    ['ventes', 'id'],
    ['sagas', 'commande_id'],
    ['inbox', 'consumer, event_id'],
    ['events', 'position'],
  ] as const) {
    snapshot[table] = (await system.choreo.pool.query(`SELECT * FROM ${table} ORDER BY ${order}`)).rows;
  }
  return snapshot;
}

function deadLetters(system: TestSystem): Promise<DeadLetter[]> {
  return deadLettersOf(system.api);
}

/** Waits until every group that reads each forged entry's stream set it aside; returns those letters. */
async function setAside(
  system: TestSystem,
  forged: ForgedEntry[],
  options: { except?: string } = {},
): Promise<DeadLetter[]> {
  const expected = forged.flatMap((entry) =>
    groupsReading(entry.stream)
      .filter((group) => group !== options.except)
      // Entry ids are per stream: two streams written in the same millisecond share one.
      .map((group) => `${system.streamKey(entry.stream)} ${entry.entryId} ${group}`),
  );
  const letters = await eventually(
    async () => {
      const byEntry = new Map(
        (await deadLetters(system)).map((letter) => [
          `${letter.stream} ${letter.entry_id} ${letter.group}`,
          letter,
        ]),
      );
      return expected.flatMap((key) => byEntry.get(key) ?? []);
    },
    (found) => found.length === expected.length,
    { description: `the ${expected.length} forged deliveries to be dead-lettered` },
  );
  return letters;
}

describeOnBus('redis', 'the issue’s forged sale: a VenteConfirmee no one confirmed', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('forged_sale', { bus: 'redis', config: { sagaDeadlineMs: 6_000 } });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('given an order waiting in paiement_accepte with the sales service down, when a VenteConfirmee for it is forged on vente.evenements, then nothing is sold, the saga keeps its deadline, and the order expires fully compensated', async () => {
    // given an order paid while the sales service is down
    const magasin = await shop.magasin();
    const produit = await shop.produit(2);
    await shop.setStock(magasin, produit, 10);
    const client = await shop.client(50);
    expect(await system.choreo.pauseActor('ventes')).toBe(true);
    const commandeId = await shop.order(client, magasin, [[produit, 3]]);
    await eventually(
      () => shop.commande(commandeId),
      (commande) => commande.statut === 'paiement_accepte',
      { description: `${commandeId} to be paid` },
    );
    await eventually(
      () => shop.stockOf(magasin, produit),
      (level) => level.reservee === 3,
    );
    const history = await eventsOf(system, commandeId);
    const paid = z
      .object({ client_id: z.number(), magasin_id: z.number(), total: z.number() })
      .parse(history.at(-1)?.data);

    // when an outsider puts a VenteConfirmee for it on vente.evenements (unsigned, and signed with its own key)
    const forgedSale = nextEvent(history, {
      event_type: 'VenteConfirmee',
      source: 'ventes-service',
      data: { vente_id: 1, ...paid },
    });
    const forged = [
      await forge(system, forgedSale, 'unsigned'),
      await forge(system, { ...forgedSale, event_id: randomUUID() }, 'outsider-signed'),
    ];

    // then both groups that read the stream set each entry aside at once, saying why
    const letters = await setAside(system, forged);
    expect(letters.map((letter) => [letter.group, letter.reason, letter.deliveries]).sort()).toEqual([
      ['commande-saga', "not published by choreo's relay: signature invalid", 1],
      ['commande-saga', "not published by choreo's relay: signature missing", 1],
      ['stock-service', "not published by choreo's relay: signature invalid", 1],
      ['stock-service', "not published by choreo's relay: signature missing", 1],
    ]);
    // and the reservation is not sold, and the saga still waits with its deadline
    expect(await shop.stockOf(magasin, produit)).toEqual(
      expect.objectContaining({ quantite: 7, reservee: 3 }),
    );
    const saga = await system.choreo.pool.query(
      'SELECT statut, deadline_at FROM sagas WHERE commande_id = $1',
      [commandeId],
    );
    expect(saga.rows[0]).toEqual({ statut: 'paiement_accepte', deadline_at: expect.any(Date) });
    // and the rejections are counted, by group and reason
    const metrics = (await system.api.get('/metrics')).text;
    for (const group of ['stock-service', 'commande-saga']) {
      for (const reason of ['signature_missing', 'signature_invalid']) {
        expect(metrics).toContain(`bus_entries_rejected_total{consumer="${group}",reason="${reason}"} 1`);
      }
    }

    // and the order then expires and is fully compensated: refunded, its stock back
    expect((await shop.finalCommande(commandeId)).statut).toBe('annulee');
    expect(await shop.stockSettlesAt(magasin, produit, { quantite: 10, reservee: 0 })).toEqual({
      quantite: 10,
      reservee: 0,
    });
    await eventually(
      () => shop.solde(client),
      (solde) => solde === 50,
      { description: 'the client to be refunded' },
    );
    const audit = await runConservationAudit(system.choreo.pool);
    expect(audit.effets_sans_evenement).toEqual([]);
    expect(audit.ok).toBe(true);
    expect(auditBody.parse((await system.api.get('/api/audit')).body).ok).toBe(true);
  });
});

describeOnBus('redis', 'forged entries on every stream', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('forged_entries', { bus: 'redis' });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('given an order waiting on the sales service, when a plausible next event for it is forged on each stream (and a new commande on commande.evenements), then every group that reads each stream sets it aside at its first delivery, and no table changes', async () => {
    // given an order paid and waiting on the sales service, paused
    const magasin = await shop.magasin();
    const produit = await shop.produit(4);
    await shop.setStock(magasin, produit, 10);
    const client = await shop.client(100);
    expect(await system.choreo.pauseActor('ventes')).toBe(true);
    const commandeId = await shop.order(client, magasin, [[produit, 2]]);
    await eventually(
      () => shop.commande(commandeId),
      (commande) => commande.statut === 'paiement_accepte',
      { description: `${commandeId} to be paid` },
    );
    await settled(system, 'ventes-service');
    const history = await eventsOf(system, commandeId);
    const paid = z
      .object({ client_id: z.number(), magasin_id: z.number(), total: z.number() })
      .parse(history.at(-1)?.data);
    const before = await tables(system);

    // when an outsider forges, on each stream, an event that would move it (and a new commande)
    const newCommandeId = `cmd-${randomUUID()}`;
    const forged = [
      await forge(
        system,
        {
          event_id: randomUUID(),
          event_type: 'CommandeCreee',
          aggregate_id: newCommandeId,
          version: 1,
          position: (history.at(-1)?.position ?? 0) + 1,
          timestamp: new Date().toISOString(),
          source: 'panier-service',
          correlation_id: newCommandeId,
          causation_id: null,
          data: {
            client_id: client,
            magasin_id: magasin,
            produits: [{ produit_id: produit, quantite: 5, prix_unitaire: 4, sous_total: 20 }],
            total: 20,
          },
        },
        'unsigned',
      ),
      await forge(
        system,
        nextEvent(history, {
          event_type: 'CommandeExpiree',
          source: 'commande-saga',
          data: { raison: 'delai_depasse', etat: 'paiement_accepte', delai_ms: 1 },
        }),
        'outsider-signed',
      ),
      await forge(
        system,
        nextEvent(history, {
          event_type: 'StockLibere',
          source: 'stock-service',
          data: { magasin_id: magasin, produits: [{ produit_id: produit, quantite: 2 }], raison: 'x' },
        }),
        'unsigned',
      ),
      await forge(
        system,
        nextEvent(history, {
          event_type: 'PaiementRembourse',
          source: 'client-service',
          data: { ...paid, raison: 'delai_depasse' },
        }),
        'unsigned',
      ),
      await forge(
        system,
        nextEvent(history, {
          event_type: 'VenteConfirmee',
          source: 'ventes-service',
          data: { vente_id: 1, ...paid },
        }),
        'outsider-signed',
      ),
    ];

    // then every group that reads each stream (but the paused sales service) sets each entry aside, once
    const letters = await setAside(system, forged, { except: 'ventes-service' });
    const seen = letters.map(
      (letter) => `${letter.stream.slice(system.streamPrefix.length)} ${letter.group}`,
    );
    expect(seen.sort()).toEqual(
      [
        'commande.evenements commande-saga',
        'commande.evenements commande-saga',
        'commande.evenements client-service',
        'commande.evenements client-service',
        'commande.evenements stock-service',
        'commande.evenements stock-service',
        'paiement.evenements commande-saga',
        'paiement.evenements stock-service',
        'stock.evenements client-service',
        'stock.evenements commande-saga',
        'vente.evenements commande-saga',
        'vente.evenements stock-service',
      ].sort(),
    );
    for (const letter of letters) {
      expect(letter.reason).toMatch(/^not published by choreo's relay: signature (missing|invalid)$/);
      expect(letter.deliveries).toBe(1);
    }
    // and nothing changed: no table, no commande, no event appended
    expect(await tables(system)).toEqual(before);
    expect((await shop.commande(commandeId)).statut).toBe('paiement_accepte');
    expect((await system.api.get(`/api/commandes/${newCommandeId}`)).status).toBe(404);

    // when the sales service comes back, it sets aside the forged refund too, and the real order completes once
    expect(system.choreo.resumeActor('ventes')).toBe(true);
    const refund = forged.filter((entry) => entry.stream === 'paiement.evenements');
    const [ventesLetter] = await setAside(system, refund, {}).then((found) =>
      found.filter((letter) => letter.group === 'ventes-service'),
    );
    expect(ventesLetter).toMatchObject({
      reason: "not published by choreo's relay: signature missing",
      deliveries: 1,
    });
    expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    const ventes = z
      .array(z.object({ commande_id: z.string() }))
      .parse((await system.api.get('/api/ventes')).body);
    expect(ventes.map((vente) => vente.commande_id)).toEqual([commandeId]);
    expect(await shop.stockSettlesAt(magasin, produit, { quantite: 8, reservee: 0 })).toEqual({
      quantite: 8,
      reservee: 0,
    });
    expect((await runConservationAudit(system.choreo.pool)).ok).toBe(true);
  });

  it('given orders coming in, when forged entries arrive among them on every stream, then every order completes and every forged entry is set aside', async () => {
    // (the sales service runs, whatever the test before left)
    system.choreo.resumeActor('ventes');
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 100);
    const clients = await Promise.all(Array.from({ length: 6 }, () => shop.client(20)));
    const lettersBefore = (await deadLetters(system)).length;

    // when orders and forged entries come in together
    const forging = (async () => {
      const forged: ForgedEntry[] = [];
      for (let round = 0; round < 3; round += 1) {
        for (const eventType of ['CommandeCreee', 'StockReserve', 'PaiementAccepte', 'VenteConfirmee']) {
          const commandeId = `cmd-${randomUUID()}`;
          forged.push(
            await forge(
              system,
              {
                event_id: randomUUID(),
                event_type: eventType,
                aggregate_id: commandeId,
                version: 1,
                position: 1,
                timestamp: new Date().toISOString(),
                source: 'an-outsider',
                correlation_id: commandeId,
                causation_id: null,
                data: { client_id: clients[0] ?? 1, magasin_id: magasin, total: 1 },
              },
              round % 2 === 0 ? 'unsigned' : 'outsider-signed',
            ),
          );
        }
      }
      return forged;
    })();
    const commandes = await Promise.all(clients.map((client) => shop.order(client, magasin, [[produit, 2]])));
    const forged = await forging;

    // then every order completes, once
    for (const commandeId of commandes) {
      expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    }
    // and every forged entry was set aside by every group that reads its stream, and by nothing else
    const letters = await setAside(system, forged);
    expect(letters.every((letter) => letter.reason.startsWith("not published by choreo's relay"))).toBe(true);
    expect((await deadLetters(system)).length - lettersBefore).toBe(letters.length);
    expect(await shop.stockSettlesAt(magasin, produit, { quantite: 88, reservee: 0 })).toEqual({
      quantite: 88,
      reservee: 0,
    });
    expect((await runConservationAudit(system.choreo.pool)).ok).toBe(true);
  });

  it('given a genuine entry a group dead-lettered, when it is re-driven, then it still verifies and is applied', async () => {
    // given a sale a constraint stops (a bug in the sales service), dead-lettered by ventes-service
    await system.choreo.pool.query('ALTER TABLE ventes ADD CONSTRAINT ventes_closed CHECK (false) NOT VALID');
    const magasin = await shop.magasin();
    const produit = await shop.produit(2);
    await shop.setStock(magasin, produit, 5);
    const client = await shop.client(10);
    const commandeId = await shop.order(client, magasin, [[produit, 1]]);
    const letter = await eventually(
      async () =>
        (await deadLetters(system)).find(
          (candidate) => candidate.group === 'ventes-service' && /ventes_closed/.test(candidate.reason),
        ),
      (found) => found !== undefined,
      { description: 'the PaiementAccepte entry to be dead-lettered by ventes-service' },
    );
    // the dead letter keeps the relay's signature with the fields
    expect(letter?.fields.signature).toEqual(expect.any(String));

    // when the fault is fixed and the letter re-driven
    await system.choreo.pool.query('ALTER TABLE ventes DROP CONSTRAINT ventes_closed');
    expect((await system.api.post(`/api/dead-letters/${letter?.id}/rejouer`)).status).toBe(202);

    // then the order completes: the re-driven entry verified
    expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
  });
});
