import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import type { BusKind } from '../src/config.js';
import { describeWithBrowser, TestBrowser } from './support/browser.js';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { TestSystem } from './support/test-system.js';

const UI_TIMEOUT = 15_000;

const createdClient = z.object({ id: z.number().int(), token: z.string().min(1) });

/** A client as it signs in: its id and the token choreo answered when it was created. */
interface SignedClient {
  id: number;
  token: string;
}

describeWithBrowser('the explorer in a real browser', () => {
  describeOnEachBus('explorer', (bus: BusKind) => {
    let system: TestSystem;
    let browser: TestBrowser;
    let shop: Shop;
    let magasin: number;
    let produit: number;
    let richClient: number;
    let staffToken: string;
    let alice: SignedClient;
    let bob: SignedClient;
    /** Every token a page of this browser was given, replaced ones too. */
    const everyToken: string[] = [];
    let aliceOrder: string;
    let bobOrder: string;

    async function signedClient(nom: string): Promise<SignedClient> {
      const created = await system.api.post('/api/clients', { nom, solde: 100 });
      expect(created.status).toBe(201);
      return createdClient.parse(created.body);
    }

    beforeAll(async () => {
      [system, browser] = await Promise.all([
        TestSystem.start('explorer', {
          bus,
          config: { maxDeliveries: 2 },
          choreo: { consumerTuning: { blockMs: 200, claimIdleMs: 200 } },
        }),
        TestBrowser.launch(),
      ]);
      if (system.api.token === null) throw new Error('the explorer tests need a staff token');
      staffToken = system.api.token;
      shop = new Shop(system.api);
      magasin = await shop.magasin();
      produit = await shop.produit(2);
      await shop.setStock(magasin, produit, 100);
      richClient = await shop.client(1_000);
      alice = await signedClient('Alice');
      bob = await signedClient('Bob');
      everyToken.push(staffToken, alice.token, bob.token);
      aliceOrder = await shop.order(alice.id, magasin, [[produit, 1]]);
      bobOrder = await shop.order(bob.id, magasin, [[produit, 1]]);
      await Promise.all([shop.finalCommande(aliceOrder), shop.finalCommande(bobOrder)]);
    });
    afterAll(async () => {
      await browser?.close();
      await system?.stop();
    });

    /** Signs in through the page's form, as a person does, and waits until the page says who. */
    async function signIn(page: Page, token: string): Promise<void> {
      await page.getByLabel('Staff or client token').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#who-name').waitFor({ timeout: UI_TIMEOUT });
    }

    /** Opens a view signed in; one that follows the live feed is ready once the feed is connected. */
    async function open(
      hash: string,
      { live = true, token = staffToken, expectedStatuses = [] as number[] } = {},
    ): Promise<Page> {
      const page = await browser.page({ expectedStatuses });
      await page.goto(`${system.api.baseUrl}/explorer${hash}`);
      await signIn(page, token);
      await page.locator('main h1:not(#sign-in-title)').waitFor({ timeout: UI_TIMEOUT });
      if (live) await page.locator('#live-status[data-state="live"]').waitFor({ timeout: UI_TIMEOUT });
      return page;
    }

    function countOn(page: Page, state: string) {
      return page.locator(`svg g.node[data-state="${state}"] text.count`);
    }

    function rowsOf(page: Page): Promise<(string | null)[]> {
      return page
        .locator('tbody tr[data-commande]')
        .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-commande')));
    }

    it('GET / leads to the explorer, which asks for a token, then loads nothing from outside', async () => {
      const root = await fetch(`${system.api.baseUrl}/`, { redirect: 'manual' });
      expect(root.status).toBe(302);
      expect(root.headers.get('location')).toBe('/explorer');
      const page = await browser.page();
      const requested: string[] = [];
      page.on('request', (request) => requested.push(request.url()));
      await page.goto(`${system.api.baseUrl}/`);
      await signIn(page, staffToken);
      await page.locator('svg g.node[data-state="vente_confirmee"]').waitFor({ timeout: UI_TIMEOUT });
      expect(page.url()).toBe(`${system.api.baseUrl}/explorer`);
      expect(await page.locator('#who-name').textContent()).toBe('staff');
      expect(
        requested.filter((url) => !url.startsWith(system.api.baseUrl) && !url.startsWith('data:')),
      ).toEqual([]);
      await page.close();
    });

    it('with no token, the page shows the sign-in form and no data request of it succeeds', async () => {
      const page = await browser.page();
      const answered: { url: string; status: number }[] = [];
      page.on('response', (response) => answered.push({ url: response.url(), status: response.status() }));
      await page.goto(`${system.api.baseUrl}/explorer#/orders`);
      await page.getByLabel('Staff or client token').waitFor({ timeout: UI_TIMEOUT });
      await page.waitForLoadState('networkidle');
      expect(await page.getByText('.choreo/admin-token').count()).toBe(1);
      expect(await page.locator('nav').isVisible()).toBe(false);
      expect(await page.locator('#live-status').getAttribute('data-state')).toBe('signed-out');
      const dataAnswers = answered.filter(({ url }) => new URL(url).pathname.startsWith('/api/'));
      expect(dataAnswers.filter(({ status }) => status < 400)).toEqual([]);
      await browser.screenshot(page, `sign-in-${bus}`);
      await page.close();
    });

    it('a wrong token is refused on the form, and nothing is kept', async () => {
      const page = await browser.page({ expectedStatuses: [401] });
      await page.goto(`${system.api.baseUrl}/explorer`);
      await page.getByLabel('Staff or client token').fill(`${staffToken}x`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const refusal = page.getByRole('alert');
      await refusal.waitFor({ timeout: UI_TIMEOUT });
      expect(await refusal.textContent()).toMatch(/not accepted/);
      expect(await page.getByLabel('Staff or client token').getAttribute('aria-invalid')).toBe('true');
      expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
      expect(await page.locator('nav').isVisible()).toBe(false);
      await browser.screenshot(page, `sign-in-refused-${bus}`);
      await page.close();
    });

    it("a client's token shows that client's orders only, live, and no staff view; signing out forgets it", async () => {
      // Bob's order, asked for below, answers 404.
      const page = await open('#/', { token: alice.token, expectedStatuses: [404] });
      expect(await page.locator('#who-name').textContent()).toBe(`client n°${alice.id}`);
      expect(await page.locator('main h1').textContent()).toBe(`Your orders, client n°${alice.id}`);
      await page.locator(`tr[data-commande="${aliceOrder}"]`).waitFor({ timeout: UI_TIMEOUT });
      expect(await rowsOf(page)).not.toContain(bobOrder);
      const links = await page
        .locator('nav a:visible')
        .evaluateAll((found) => found.map((link) => link.textContent));
      expect(links).toEqual(['Orders']);

      // Bob orders, then Alice: Alice's appears live, and Bob's, told to the feed first, never does.
      const bobLater = await shop.order(bob.id, magasin, [[produit, 1]]);
      const aliceLater = await shop.order(alice.id, magasin, [[produit, 1]]);
      await page
        .locator(`tr[data-commande="${aliceLater}"][data-statut="vente_confirmee"]`)
        .waitFor({ timeout: UI_TIMEOUT });
      await shop.finalCommande(bobLater);
      const shown = await rowsOf(page);
      expect(shown).not.toContain(bobLater);
      expect(shown).not.toContain(bobOrder);
      await browser.screenshot(page, `client-orders-${bus}`);

      // Her order's page works; Bob's answers as an unknown order would.
      await page.goto(`${system.api.baseUrl}/explorer#/orders/${aliceOrder}`);
      await expect
        .poll(() => page.getByTestId('projection-statut').textContent(), { timeout: UI_TIMEOUT })
        .toBe('vente_confirmee');
      await page.goto(`${system.api.baseUrl}/explorer#/orders/${bobOrder}`);
      await page.getByText(`commande ${bobOrder} not found`).first().waitFor({ timeout: UI_TIMEOUT });
      expect(await page.locator('.timeline tbody tr, svg g.node').count()).toBe(0);
      await browser.screenshot(page, `client-other-order-${bus}`);

      for (const hash of ['#/dead-letters', '#/actors', '#/demo']) {
        await page.goto(`${system.api.baseUrl}/explorer${hash}`);
        await page.getByRole('heading', { name: 'For staff only' }).waitFor({ timeout: UI_TIMEOUT });
        expect(
          await page.locator('[data-actor], [data-dead-letter], [data-testid="demo-state"]').count(),
        ).toBe(0);
      }

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Staff or client token').waitFor({ timeout: UI_TIMEOUT });
      expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
      expect(await page.locator('nav').isVisible()).toBe(false);
      await page.close();
    });

    it("over HTTP, a client's explorer API carries nothing of another client, and staff's views answer 403", async () => {
      const asAlice = system.api.as(alice.token);
      const listed = await asAlice.get('/api/explorer/commandes');
      expect(listed.status).toBe(200);
      const ids = z.array(z.object({ commande_id: z.string(), client_id: z.number() })).parse(listed.body);
      expect(ids.map((row) => row.client_id)).toEqual(ids.map(() => alice.id));
      expect(ids.map((row) => row.commande_id)).toContain(aliceOrder);
      const asked = `/api/explorer/commandes?client_id=${bob.id}`;
      expect((await asAlice.get(asked)).status).toBe(404);
      const history = (id: string) => `/api/explorer/commandes/${id}/historique`;
      expect((await asAlice.get(history(aliceOrder))).status).toBe(200);
      expect((await asAlice.get(history(bobOrder))).status).toBe(404);
      expect((await system.api.get(history(bobOrder))).status).toBe(200);
      for (const path of ['/api/processes', '/api/demo']) expect((await asAlice.get(path)).status).toBe(403);
      expect((await system.api.anonymous().get('/api/explorer/session')).status).toBe(401);
      expect((await asAlice.get('/api/explorer/session')).body).toEqual({
        role: 'client',
        client_id: alice.id,
      });

      // The live feed: a client asking for the overview is refused; its changes are its own only.
      const overview = await fetch(`${system.api.baseUrl}/api/explorer/live?overview=1`, {
        headers: asAlice.authorization,
      });
      expect(overview.status).toBe(403);
      const feed = new AbortController();
      const live = await fetch(`${system.api.baseUrl}/api/explorer/live?changes=all`, {
        headers: asAlice.authorization,
        signal: feed.signal,
      });
      expect(live.status).toBe(200);
      let received = '';
      const reading = (async () => {
        const reader = live.body?.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const next = await reader?.read();
          if (!next || next.done) return;
          received += next.value;
        }
      })().catch(() => {});
      const bobLater = await shop.order(bob.id, magasin, [[produit, 1]]);
      await shop.finalCommande(bobLater);
      const aliceLater = await shop.order(alice.id, magasin, [[produit, 1]]);
      await shop.finalCommande(aliceLater);
      await eventually(
        async () => received,
        (text) => text.includes(aliceLater) && text.includes('VenteConfirmee'),
        { description: "Alice's feed to tell of her new order's sale" },
      );
      feed.abort();
      await reading;
      expect(received).not.toContain(bobLater);
      expect(received).not.toContain(`"client_id":${bob.id}`);
      expect(received).not.toMatch(/^event: overview$/m);
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
      expect((await rowsOf(orders)).slice(0, 3)).toEqual([unpaid, outOfStock, succeeding]);
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

    it('a client whose token is replaced is signed out of the page it has open', async () => {
      const page = await open('#/orders', { token: alice.token, expectedStatuses: [401] });
      const reissued = await system.api.post(`/api/clients/${alice.id}/token`);
      expect(reissued.status).toBe(201);
      alice = {
        id: alice.id,
        token: createdClient.shape.token.parse((reissued.body as { token: unknown }).token),
      };
      everyToken.push(alice.token);
      // Its open stream ends once the token is checked again; the page, reconnecting, is refused.
      await page.getByLabel('Staff or client token').waitFor({ timeout: UI_TIMEOUT });
      expect(await page.getByText('Your token is no longer accepted: sign in again.').count()).toBe(1);
      expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
      await signIn(page, alice.token);
      await page.locator('#live-status[data-state="live"]').waitFor({ timeout: UI_TIMEOUT });
      await page.close();
    });

    it('when the connection drops, the live feed reconnects with Last-Event-ID and the orders placed meanwhile appear without a reload', async () => {
      const server = new URL(system.api.baseUrl);
      const proxy = await TcpProxy.start({ host: server.hostname, port: Number(server.port) });
      const page = await browser.page({ networkCuts: true });
      const liveRequests: { lastEventId: string | undefined; authorized: boolean }[] = [];
      let listLoads = 0;
      page.on('request', (request) => {
        const { pathname } = new URL(request.url());
        if (pathname === '/api/explorer/commandes') listLoads += 1;
        if (pathname !== '/api/explorer/live') return;
        const headers = request.headers();
        liveRequests.push({
          lastEventId: headers['last-event-id'],
          authorized: headers.authorization === `Bearer ${staffToken}`,
        });
      });
      try {
        await page.goto(`http://127.0.0.1:${proxy.port}/explorer#/orders`);
        await signIn(page, staffToken);
        await page.locator('#live-status[data-state="live"]').waitFor({ timeout: UI_TIMEOUT });
        const before = await shop.order(richClient, magasin, [[produit, 1]]);
        await page
          .locator(`tr[data-commande="${before}"][data-statut="vente_confirmee"]`)
          .waitFor({ timeout: UI_TIMEOUT });

        await proxy.cut();
        await page.locator('#live-status[data-state="reconnecting"]').waitFor({ timeout: UI_TIMEOUT });
        const meanwhile = await shop.order(richClient, magasin, [[produit, 1]]);
        await shop.finalCommande(meanwhile);
        await proxy.restore();

        await page
          .locator(`tr[data-commande="${meanwhile}"][data-statut="vente_confirmee"]`)
          .waitFor({ timeout: UI_TIMEOUT });
        expect(await page.locator('#live-status').getAttribute('data-state')).toBe('live');
        expect(listLoads).toBe(1);
        expect(liveRequests.length).toBeGreaterThan(1);
        expect(liveRequests.every((request) => request.authorized)).toBe(true);
        expect(liveRequests[0]?.lastEventId).toBeUndefined();
        expect(liveRequests.at(-1)?.lastEventId).toMatch(/^\d+$/);
      } finally {
        await page.close();
        await proxy.cut();
      }
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

    it('no token ever appeared in a URL a page requested or showed', () => {
      // The pages above requested their scripts, data and streams, and showed several views each.
      expect(
        browser.requestedUrls.filter((url) => url.includes('/api/explorer/live')).length,
      ).toBeGreaterThan(0);
      expect(browser.pageUrls.filter((url) => url.includes('#/orders/')).length).toBeGreaterThan(0);
      for (const token of everyToken) {
        const forms = [token, encodeURIComponent(token), token.slice(-24)];
        const leaks = [...browser.requestedUrls, ...browser.pageUrls].filter((url) =>
          forms.some((form) => url.includes(form) || decodeURIComponent(url).includes(form)),
        );
        expect(leaks).toEqual([]);
      }
    });
  });
});
