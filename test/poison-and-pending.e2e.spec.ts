import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { type BusProbe, busProbe } from './support/bus-probe.js';
import { describeOnEachBus } from './support/buses.js';
import { deadLettersOf } from './support/dead-letters.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

describeOnEachBus('poison entries go to the dead letters', (bus) => {
  let system: TestSystem;
  let probe: BusProbe;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('poison', {
      bus,
      config: { maxDeliveries: 3 },
      choreo: { consumerTuning: { blockMs: 200, claimIdleMs: 200 } },
    });
    probe = busProbe(system);
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await probe?.close();
    await system?.stop();
  });

  async function deadLetters() {
    return deadLettersOf(system.api);
  }

  it('given an event a service fails on until it is dead-lettered, when the fault is fixed and the dead letter re-driven, then the order completes once', async () => {
    // given a sale that cannot be recorded (a constraint stands for a bug in the sales service)
    await system.choreo.pool.query('ALTER TABLE ventes ADD CONSTRAINT ventes_closed CHECK (false) NOT VALID');
    const magasin = await shop.magasin();
    const produit = await shop.produit(2);
    await shop.setStock(magasin, produit, 10);
    const client = await shop.client(10);
    const commandeId = await shop.order(client, magasin, [[produit, 1]]);
    const letter = await eventually(
      async () => (await deadLetters()).find((candidate) => candidate.group === 'ventes-service'),
      (found) => found !== undefined,
      { description: 'the PaiementAccepte entry to be dead-lettered by ventes-service' },
    );
    expect(letter?.reason).toMatch(/ventes_closed/);
    expect((await shop.commande(commandeId)).statut).toBe('paiement_accepte');

    // when the fault is fixed and the dead letter re-driven
    await system.choreo.pool.query('ALTER TABLE ventes DROP CONSTRAINT ventes_closed');
    const redriven = await system.api.post(`/api/dead-letters/${letter?.id}/rejouer`);

    // then the order completes, once, and the dead letter is gone
    expect(redriven.status).toBe(202);
    expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    const ventes = z
      .array(z.object({ commande_id: z.string() }))
      .parse((await system.api.get('/api/ventes')).body);
    expect(ventes.filter((vente) => vente.commande_id === commandeId)).toHaveLength(1);
    await eventually(deadLetters, (list) => !list.some((candidate) => candidate.id === letter?.id), {
      description: 'the re-driven dead letter to be removed',
    });
    expect((await system.api.post(`/api/dead-letters/${letter?.id}/rejouer`)).status).toBe(404);
  });

  it('given an entry that can never be decoded on a stream two groups read, when orders keep coming, then each group dead-letters it at its first delivery, with the reason, and goes on', async () => {
    // given an entry no consumer can decode (a broken producer) on a stream that two groups read
    const poison = await probe.injectMalformed('stock.evenements');

    // when orders keep coming
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 10);
    const client = await shop.client(10);
    const commandeId = await shop.order(client, magasin, [[produit, 1]]);

    // then the consumers went on with the next entries
    expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    // and each group dead-lettered it at once, with why: no retry can make it decodable
    const letters = await eventually(deadLetters, (list) => list.length >= 2, {
      description: 'both groups reading stock.evenements to dead-letter the entry',
    });
    expect(letters.map((letter) => letter.group).sort()).toEqual(['client-service', 'commande-saga']);
    for (const letter of letters) {
      expect(letter).toMatchObject({
        stream: poison.deadLetterStream,
        entry_id: poison.entryId,
        fields: poison.fields,
      });
      expect(letter.reason).toMatch(poison.reason);
      expect(letter.deliveries).toBe(poison.deliveries);
    }
    // and the groups are done with it: nothing is left in hand for it, and it is counted
    await eventually(
      () => probe.consumedBy(['client-service', 'commande-saga'], poison.stream, poison.entryId),
      (done) => done,
      { description: 'the poison entry to be acknowledged by both groups' },
    );
    const metrics = await eventually(
      async () => (await system.api.get('/metrics')).text,
      (text) => /dead_letters_total\{consumer="client-service"\} 1/.test(text),
      { description: 'the dead letter to be counted' },
    );
    expect(metrics).toMatch(/dead_letters_total\{consumer="client-service"\} 1/);
    // and counted as an entry the bus rejected
    expect(metrics).toMatch(/bus_entries_rejected_total\{consumer="client-service",reason="undecodable"\} 1/);
  });
});

describeOnEachBus('events held by a consumer that died', (bus) => {
  let system: TestSystem;
  let probe: BusProbe;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('pending', {
      bus,
      actors: ['panier', 'client', 'ventes', 'saga', 'relay', 'projections'],
    });
    probe = busProbe(system);
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await probe?.close();
    await system?.stop();
  });

  it('given a stock-service consumer that took an order’s event and died, when a live one runs beside it, then the live one takes the work over and the order goes through', async () => {
    // given a stock-service consumer that took an order's event and died before finishing it
    const ghost = await probe.ghostConsumer('stock-service', 'commande.evenements');
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 10);
    const client = await shop.client(10);
    const commandeId = await shop.order(client, magasin, [[produit, 1]]);
    await ghost.take();
    expect(await ghost.holdsWork()).toBe(true);

    // when a live stock-service consumer runs beside it (nothing is restarted), and the ghost's process is
    // gone for good
    await system.addNode(['stock']);
    await ghost.die();

    // then it takes the work over (once the ghost's is idle long enough, or its session is gone), and the
    // order goes through
    expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    await eventually(
      async () => (await probe.eventsInHand()).filter((held) => held.count > 0),
      (held) => held.length === 0,
      { description: 'nothing left in hand' },
    );
    // and the dead consumer, holding nothing any more, is eventually forgotten by the group
    await eventually(
      () => ghost.forgotten(),
      (forgotten) => forgotten,
      { description: 'the ghost consumer to be removed from the group' },
    );
  });
});
