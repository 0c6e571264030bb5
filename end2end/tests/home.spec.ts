// The start page renders on the server, hydrates in the browser, and reads well on phone and desktop.
import { test, expect } from '@playwright/test';

test('the start page explains Countersign and hydrates', async ({ page }, testInfo) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  const wasm = page.waitForResponse((r) => r.url().endsWith('/pkg/countersign_bg.wasm'));

  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1, name: 'Countersign' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'For approvers' })).toBeVisible();
  await expect(page.getByRole('link', { name: '/.well-known/openid-configuration' })).toBeVisible();
  expect((await wasm).status()).toBe(200);
  await page.waitForLoadState('networkidle');
  expect(errors).toEqual([]);

  await page.screenshot({ path: `screenshots/home-${testInfo.project.name}.png`, fullPage: true });
});

test('unknown paths get a 404 page', async ({ page }) => {
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
