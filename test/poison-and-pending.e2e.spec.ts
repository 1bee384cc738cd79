import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const deadLetterList = z.array(
  z.object({
    id: z.string(),
    stream: z.string(),
    entry_id: z.string(),
    group: z.string(),
    reason: z.string(),
    deliveries: z.number(),
    fields: z.record(z.string(), z.string()),
  }),
);

describe('poison entries go to the dead-letter stream', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('poison', {
      config: { maxDeliveries: 3 },
      choreo: { consumerTuning: { blockMs: 200, claimIdleMs: 200 } },
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  async function deadLetters() {
    return deadLetterList.parse((await system.api.get('/api/dead-letters')).body);
  }

  it('retries a malformed entry a bounded number of times, dead-letters it with the reason, and goes on', async () => {
    // given a malformed entry injected straight into a stream that two groups read
    const stream = `${system.streamPrefix}stock.evenements`;
    const poison = {
      event_id: 'not-a-uuid',
      event_type: 'StockReserve',
      aggregate_id: 'cmd-x',
      data: '{oops',
    };
    const entryId = String(await system.redis.call('XADD', stream, '*', ...Object.entries(poison).flat()));

    // when orders keep coming
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 10);
    const client = await shop.client(10);
    const commandeId = await shop.order(client, magasin, [[produit, 1]]);

    // then the consumers went on with the next entries
    expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    // and each group that failed on the entry dead-lettered it once, with why and how often
    const letters = await eventually(deadLetters, (list) => list.length >= 2, {
      description: 'both groups reading stock.evenements to dead-letter the entry',
    });
    expect(letters.map((letter) => letter.group).sort()).toEqual(['client-service', 'commande-saga']);
    for (const letter of letters) {
      expect(letter).toMatchObject({ stream, entry_id: entryId, fields: poison });
      expect(letter.reason).toMatch(/invalid envelope/);
      expect(letter.deliveries).toBeGreaterThan(3);
    }
    // and it is acknowledged (just after being dead-lettered): nothing is left pending for it, and it is counted
    const pending = await eventually(
      async () =>
        z
          .array(z.unknown())
          .parse(await system.redis.call('XPENDING', stream, 'client-service', '-', '+', '10')),
      (entries) => entries.length === 0,
      { description: 'the poison entry to be acknowledged' },
    );
    expect(pending).toEqual([]);
    const metrics = await eventually(
      async () => (await system.api.get('/metrics')).text,
      (text) => /dead_letters_total\{consumer="client-service"\} 1/.test(text),
      { description: 'the dead letter to be counted' },
    );
    expect(metrics).toMatch(/dead_letters_total\{consumer="client-service"\} 1/);
  });

  it('re-drives a dead letter after the fault is fixed', async () => {
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
    expect((await deadLetters()).some((candidate) => candidate.id === letter?.id)).toBe(false);
    expect((await system.api.post(`/api/dead-letters/${letter?.id}/rejouer`)).status).toBe(404);
  });
});

describe('entries left pending by a dead consumer', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('pending', {
      actors: ['panier', 'client', 'ventes', 'saga', 'relay', 'projections'],
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('are reclaimed by a live consumer of the group after the idle timeout', async () => {
    // given a stock-service consumer that took an order's entry and died before acknowledging it
    const stream = `${system.streamPrefix}commande.evenements`;
    const redis = system.redis;
    await redis.call('XGROUP', 'CREATE', stream, 'stock-service', '0', 'MKSTREAM');
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 10);
    const client = await shop.client(10);
    const commandeId = await shop.order(client, magasin, [[produit, 1]]);
    await eventually(
      async () =>
        redis.call('XREADGROUP', 'GROUP', 'stock-service', 'ghost', 'COUNT', '10', 'STREAMS', stream, '>'),
      (reply) => reply !== null,
      { description: 'the ghost consumer to take the entry' },
    );
    const owners = () => redis.call('XPENDING', stream, 'stock-service', '-', '+', '10');
    expect(JSON.stringify(await owners())).toContain('ghost');

    // when a live stock-service consumer runs beside it (nothing is restarted)
    await system.addNode(['stock']);

    // then it claims the entry once idle long enough, and the order goes through
    expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    await eventually(owners, (pending) => JSON.stringify(pending) === '[]', {
      description: 'nothing left pending',
    });
    // and the dead consumer, holding nothing any more, is eventually forgotten by the group
    await eventually(
      async () => JSON.stringify(await redis.call('XINFO', 'CONSUMERS', stream, 'stock-service')),
      (consumers) => !consumers.includes('ghost'),
      { description: 'the ghost consumer to be removed from the group' },
    );
  });
});
