import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { describe } from 'vitest';
import { everyServerRequired } from './servers.js';

/** Debian's Chromium (`apt-get install chromium`); never a browser downloaded by Playwright. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Where the browser tests keep their screenshots (git-ignored). */
export const SCREENSHOT_DIR = join(process.cwd(), 'test-results', 'explorer');

/** `describe` when Chromium is installed; otherwise skipped with one line (a failure when CI requires all). */
export function describeWithBrowser(title: string, body: () => void): void {
  if (existsSync(CHROMIUM)) {
    describe(title, body);
    return;
  }
  const why = `needs Chromium at ${CHROMIUM} (apt-get install chromium)`;
  if (everyServerRequired()) describe(title, () => body());
  else describe.skip(`${title} (skipped: ${why})`, body);
}

/** The line Chromium logs for an answer with an error status (its own, not the page's). */
const FAILED_RESOURCE_LINE = /^Failed to load resource: the server responded with a status of (\d{3})\b/;
/** The line Chromium logs for a request the network broke (a connection refused or cut). */
const NETWORK_FAILURE_LINE = /^Failed to load resource: net::ERR_[A-Z_]+$/;

export interface PageOptions {
  /**
   * Statuses the page is meant to be answered (a refused token: 401; another client's order: 404): the
   * line Chromium logs for them is not an error of the page. Any other error still is.
   */
  expectedStatuses?: readonly number[];
  /** The test cuts the page's connections: the line Chromium logs for a broken request is expected. */
  networkCuts?: boolean;
}

/**
 * A headless Chromium with a fresh, empty profile; every console error and uncaught page error it sees,
 * so that a test can say no page logged one; and every URL its pages requested or showed, so that a test
 * can say what never appeared in one.
 */
export class TestBrowser {
  readonly consoleErrors: string[] = [];
  /** Every URL a page of this browser requested (documents, scripts, API calls, streams). */
  readonly requestedUrls: string[] = [];
  /** Every URL a page of this browser showed in its address bar (each navigation, hash changes too). */
  readonly pageUrls: string[] = [];

  private constructor(
    private readonly context: BrowserContext,
    private readonly profile: string,
  ) {}

  static async launch(): Promise<TestBrowser> {
    const profile = mkdtempSync(join(tmpdir(), 'choreo-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1400, height: 1000 },
    });
    return new TestBrowser(context, profile);
  }

  async page(options: PageOptions = {}): Promise<Page> {
    const page = await this.context.newPage();
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      const status = FAILED_RESOURCE_LINE.exec(message.text())?.[1];
      if (status !== undefined && options.expectedStatuses?.includes(Number(status))) return;
      if (options.networkCuts && NETWORK_FAILURE_LINE.test(message.text())) return;
      this.consoleErrors.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => this.consoleErrors.push(`${page.url()}: ${error.message}`));
    page.on('request', (request) => this.requestedUrls.push(request.url()));
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) this.pageUrls.push(frame.url());
    });
    return page;
  }

  async screenshot(page: Page, name: string): Promise<void> {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: false });
  }

  async close(): Promise<void> {
    await this.context.close();
    rmSync(this.profile, { recursive: true, force: true });
  }
}
