// The start page renders on the server, hydrates in the browser, and reads well on phone and desktop.
import { test, expect } from './fixtures';
import { hydrated } from './helpers';

test('the start page explains Countersign and hydrates', async ({ page }, testInfo) => {
  const failed: string[] = [];
  page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
  const wasm = page.waitForResponse((r) => /\/pkg\/countersign\.[0-9a-f]{16}\.wasm$/.test(r.url()));

  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1, name: 'Countersign' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'For approvers' })).toBeVisible();
  await expect(page.getByRole('link', { name: '/.well-known/openid-configuration' })).toBeVisible();
  expect((await wasm).status()).toBe(200);
  await hydrated(page);
  await page.waitForLoadState('networkidle');
  expect(failed).toEqual([]);

  await page.screenshot({ path: `screenshots/home-${testInfo.project.name}.png`, fullPage: true });
});

test('unknown paths get a 404 page', async ({ page, allowConsoleError }) => {
  allowConsoleError(/status of 404 .*\(source: [^)]*\/no\/such\/page\)$/);
  const response = await page.goto('/no/such/page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Not found' })).toBeVisible();
});

test('discovery and JWKS are served', async ({ request }) => {
  const config = await (await request.get('/.well-known/openid-configuration')).json();
  expect(config.grant_types_supported).toContain('urn:openid:params:grant-type:ciba');
  const jwks = await (await request.get('/jwks.json')).json();
  expect(jwks.keys[0].alg).toBe('ES256');
});
