import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BusKind } from '../src/config.js';
import { describeWithBrowser, TestBrowser } from './support/browser.js';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const UI_TIMEOUT = 15_000;

describeWithBrowser('the explorer in a real browser', () => {
  describeOnEachBus('explorer', (bus: BusKind) => {
    let system: TestSystem;
    let browser: TestBrowser;
    let shop: Shop;
    let magasin: number;
    let produit: number;
    let richClient: number;

    beforeAll(async () => {
      [system, browser] = await Promise.all([
        TestSystem.start('explorer', {
          bus,
          config: { maxDeliveries: 2 },
          choreo: { consumerTuning: { blockMs: 200, claimIdleMs: 200 } },
        }),
        TestBrowser.launch(),
      ]);
      shop = new Shop(system.api);
      magasin = await shop.magasin();
      produit = await shop.produit(2);
      await shop.setStock(magasin, produit, 100);
      richClient = await shop.client(1_000);
    });
    afterAll(async () => {
      await browser?.close();
      await system?.stop();
    });

    /** Opens a view; one that follows the live feed is ready once the feed is connected. */
    async function open(hash: string, { live = true } = {}): Promise<Page> {
      const page = await browser.page();
      await page.goto(`${system.api.baseUrl}/explorer${hash}`);
      await page.locator('main h1').waitFor({ timeout: UI_TIMEOUT });
      if (live) await page.locator('#live-status[data-state="live"]').waitFor({ timeout: UI_TIMEOUT });
      return page;
    }

    function countOn(page: Page, state: string) {
      return page.locator(`svg g.node[data-state="${state}"] text.count`);
    }

    it('GET / leads to the explorer, which loads nothing from outside', async () => {
      const root = await fetch(`${system.api.baseUrl}/`, { redirect: 'manual' });
      expect(root.status).toBe(302);
      expect(root.headers.get('location')).toBe('/explorer');
      const page = await browser.page();
      const requested: string[] = [];
      page.on('request', (request) => requested.push(request.url()));
      await page.goto(`${system.api.baseUrl}/`);
      await page.locator('svg g.node[data-state="vente_confirmee"]').waitFor({ timeout: UI_TIMEOUT });
      expect(page.url()).toBe(`${system.api.baseUrl}/explorer`);
      expect(
        requested.filter((url) => !url.startsWith(system.api.baseUrl) && !url.startsWith('data:')),
      ).toEqual([]);
      await page.close();
    });

    it('given the overview and the orders open, when orders are placed, then they appear and reach their final state without a reload, and the counts follow', async () => {
      const overview = await open('#/');
      const orders = await open('#/orders');
      await countOn(overview, 'vente_confirmee').waitFor({ timeout: UI_TIMEOUT });
      const poorClient = await shop.client(0.5);

      const succeeding = await shop.order(richClient, magasin, [[produit, 1]]);
      const outOfStock = await shop.order(richClient, magasin, [[produit, 1_000]]);
      const unpaid = await shop.order(poorClient, magasin, [[produit, 1]]);

      for (const [commandeId, statut] of [
        [succeeding, 'vente_confirmee'],
        [outOfStock, 'stock_indisponible'],
        [unpaid, 'annulee'],
      ] as const) {
        await orders
          .locator(`tr[data-commande="${commandeId}"][data-statut="${statut}"]`)
          .waitFor({ timeout: UI_TIMEOUT });
      }
      const listed = await orders
        .locator('tbody tr[data-commande]')
        .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-commande')));
      expect(listed.slice(0, 3)).toEqual([unpaid, outOfStock, succeeding]);
      for (const state of ['vente_confirmee', 'stock_indisponible', 'annulee']) {
        await expect
          .poll(() => countOn(overview, state).textContent(), { timeout: UI_TIMEOUT })
          .not.toBe('0');
      }
      await expect
        .poll(() => overview.locator('[data-outcome="vente_confirmee"] .rate-value').textContent(), {
          timeout: UI_TIMEOUT,
        })
        .not.toBe('0.00');
      await browser.screenshot(overview, `overview-${bus}`);
      await browser.screenshot(orders, `orders-${bus}`);

      // filtered by state, the list shows only those
      await orders.getByLabel('State').selectOption('stock_indisponible');
      await orders.locator(`tr[data-commande="${outOfStock}"]`).waitFor({ timeout: UI_TIMEOUT });
      await expect.poll(() => orders.locator(`tr[data-commande="${succeeding}"]`).count()).toBe(0);
      await overview.close();
      await orders.close();
    });

    it("an order's page highlights its state, lists its events, and steps back through its history with the keyboard", async () => {
      const commandeId = await shop.order(richClient, magasin, [[produit, 2]]);
      await shop.finalCommande(commandeId);
      const page = await open(`#/orders/${commandeId}`);

      await page.locator('svg g.node[data-state="vente_confirmee"][data-current="true"]').waitFor({
        timeout: UI_TIMEOUT,
      });
      const events = await page
        .locator('.timeline tbody tr')
        .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-event-type')));
      expect(events).toEqual(['CommandeCreee', 'StockReserve', 'PaiementAccepte', 'VenteConfirmee']);
      await expect.poll(() => page.getByTestId('projection-statut').textContent()).toBe('vente_confirmee');
      await browser.screenshot(page, `order-${bus}`);

      await page.keyboard.press('ArrowLeft');
      await page.locator('svg g.node[data-state="paiement_accepte"][data-current="true"]').waitFor({
        timeout: UI_TIMEOUT,
      });
      await page.keyboard.press('Home');
      await page.locator('svg g.node[data-state="en_attente_stock"][data-current="true"]').waitFor({
        timeout: UI_TIMEOUT,
      });
      await page.getByRole('button', { name: 'Go to the cause: event 2, StockReserve' }).click();
      await page.locator('svg g.node[data-state="stock_reserve"][data-current="true"]').waitFor({
        timeout: UI_TIMEOUT,
      });
      await browser.screenshot(page, `order-step-${bus}`);
      await page.close();
    });

    it('given ventes paused from the actors page, orders wait in paiement_accepte; resumed, they complete', async () => {
      const page = await open('#/actors');
      await page.getByRole('button', { name: 'Pause ventes' }).click();
      await page.getByRole('button', { name: 'Resume ventes' }).waitFor({ timeout: UI_TIMEOUT });
      expect(system.choreo.actorStates()).toContainEqual({
        actor: 'ventes',
        group: 'ventes-service',
        paused: true,
      });

      const waiting = [
        await shop.order(richClient, magasin, [[produit, 1]]),
        await shop.order(richClient, magasin, [[produit, 1]]),
      ];
      await expect
        .poll(() => page.locator('li[data-state="paiement_accepte"] .count').textContent(), {
          timeout: UI_TIMEOUT,
        })
        .toBe('2');
      for (const commandeId of waiting)
        expect((await shop.commande(commandeId)).statut).toBe('paiement_accepte');
      await browser.screenshot(page, `actors-paused-${bus}`);

      await page.getByRole('button', { name: 'Resume ventes' }).click();
      for (const commandeId of waiting)
        expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
      await expect
        .poll(() => page.locator('li[data-state="paiement_accepte"] .count').textContent(), {
          timeout: UI_TIMEOUT,
        })
        .toBe('0');
      await page.getByRole('button', { name: 'Pause ventes' }).waitFor({ timeout: UI_TIMEOUT });
      await page.close();
    });

    it('a dead letter is re-driven from the page, and its order completes', async () => {
      await system.choreo.pool.query(
        'ALTER TABLE ventes ADD CONSTRAINT ventes_closed CHECK (false) NOT VALID',
      );
      const commandeId = await shop.order(richClient, magasin, [[produit, 1]]);
      // Dead-lettering waits for the retries' backoff: slower than the page when the machine is busy.
      await eventually(
        async () => (await system.api.get('/api/dead-letters')).body,
        (letters) => Array.isArray(letters) && letters.length > 0,
        { timeoutMs: 45_000, description: 'the PaiementAccepte to be dead-lettered by ventes-service' },
      );
      const page = await open('#/dead-letters');
      const redrive = page.getByRole('button', { name: /^Re-drive dead letter .* to ventes-service$/ });
      await redrive.waitFor({ timeout: UI_TIMEOUT });
      expect(await page.locator('tr[data-dead-letter]').first().textContent()).toContain('ventes_closed');
      await browser.screenshot(page, `dead-letters-${bus}`);

      await system.choreo.pool.query('ALTER TABLE ventes DROP CONSTRAINT ventes_closed');
      await redrive.click();
      await page.getByText(/re-driven to ventes-service/).waitFor({ timeout: UI_TIMEOUT });
      expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
      await page.getByText('No dead letter: every event was handled.').waitFor({ timeout: 30_000 });
      await page.close();
    });

    it('the demo load seeds its shop and sends checkouts, its progress shown', async () => {
      const page = await open('#/demo', { live: false });
      await page.getByLabel('Checkouts per second').fill('20');
      await page.getByLabel('For (seconds)').fill('1');
      await page.getByRole('button', { name: 'Start the demo load' }).click();
      await expect
        .poll(() => page.getByTestId('demo-state').textContent(), { timeout: UI_TIMEOUT })
        .toMatch(/^done — 20 of 20 checkouts sent/);
      await browser.screenshot(page, `demo-${bus}`);
      await page.close();
      await eventually(
        async () => (await system.api.get('/api/audit')).body,
        (audit) => typeof audit === 'object' && audit !== null && 'ok' in audit && audit.ok === true,
        { description: 'the audit to stay clean after the demo load' },
      );
    });

    it('no page logged a console error', async () => {
      for (const hash of ['#/', '#/orders', '#/dead-letters', '#/actors', '#/demo']) {
        const page = await open(hash, { live: hash !== '#/demo' });
        await page.close();
      }
      expect(browser.consoleErrors).toEqual([]);
    });
  });
});
