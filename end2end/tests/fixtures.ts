// The one `test` every spec uses: it fails any test during which a page it opened threw an uncaught
// error or logged a console error (a hydration failure shows as one or the other). A test that provokes
// an error on purpose names it with `allowConsoleError`; contexts beyond the default one come from
// `newContext`, so their pages are watched too.
import { test as base, expect } from '@playwright/test';
import type { BrowserContext, BrowserContextOptions, Page } from '@playwright/test';

export { expect };

interface Fixtures {
  /** Lets console errors matching `pattern` through, for this test only. */
  allowConsoleError: (pattern: RegExp) => void;
  /** A further browser context whose pages are watched like the default one's. */
  newContext: (options?: BrowserContextOptions) => Promise<BrowserContext>;
  pageErrors: string[];
  allowed: RegExp[];
}

export const test = base.extend<Fixtures>({
  allowed: async ({}, use) => { await use([]); },
  pageErrors: [async ({ allowed }, use) => {
    const errors: string[] = [];
    await use(errors);
    const unexpected = errors.filter((e) => !allowed.some((pattern) => pattern.test(e)));
    expect(unexpected, 'uncaught page errors and console errors').toEqual([]);
  }, { auto: true }],
  context: async ({ context, pageErrors }, use) => {
    watch(context, pageErrors);
    await use(context);
  },
  newContext: async ({ browser, pageErrors }, use) => {
    const made: BrowserContext[] = [];
    await use(async (options) => {
      const context = await browser.newContext(options);
      watch(context, pageErrors);
      made.push(context);
      return context;
    });
    for (const context of made) await context.close();
  },
  allowConsoleError: async ({ allowed }, use) => {
    await use((pattern) => { allowed.push(pattern); });
  },
});

/**
 * The console line Chromium writes when server function `name` refuses a call with one of
 * `statuses` (a refusal is a 4xx, never a 500).
 */
export function refusalBy(name: string, ...statuses: number[]): RegExp {
  return new RegExp(`status of (${statuses.join('|')}) .*\\(source: [^)]*/api/${name}\\d*\\)$`);
}

function watch(context: BrowserContext, errors: string[]) {
  const onPage = (page: Page) => {
    page.on('pageerror', (e) => errors.push(`uncaught error on ${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      // The source names the resource a "Failed to load resource" line is about.
      if (m.type() === 'error') errors.push(`console error on ${page.url()}: ${m.text()} (source: ${m.location().url})`);
    });
  };
  context.pages().forEach(onPage);
  context.on('page', onPage);
}
