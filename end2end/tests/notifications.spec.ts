// Web Push: the installable app (manifest, icons, service worker), opting in on the account page, and
// a new request reaching the browser's push endpoint encrypted for it (RFC 8291) and signed (RFC 8292).
// Chromium cannot reach a real push service here, so the page's PushManager hands out a subscription
// whose endpoint is a local receiver holding the browser's keys; everything after that is real.
import { test, expect, refusalBy } from './fixtures';
import type { Page } from '@playwright/test';
import { createECDH, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as ece from 'http_ece';
import { agentRequest, enrolledApprover, hydrated, newClient } from './helpers';

interface Delivery { path: string; headers: Record<string, string | string[] | undefined>; body: Buffer }

/** A push service on loopback that collects what it receives; 201 like the real ones. */
async function pushReceiver() {
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(201).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, deliveries, close: () => server.close() };
}

/** The browser's side of a subscription: its ECDH key pair and auth secret (RFC 8291 §2). */
function browserKeys() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { ecdh, p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') };
}

/** Replaces the Push API's network part: subscribe() returns a subscription for `endpoint`. */
async function stubPushManager(page: Page, endpoint: string, p256dh: string, auth: string) {
  await page.context().grantPermissions(['notifications']);
  await page.addInitScript(([endpoint, p256dh, auth]) => {
    const stored = 'test-push-subscription';
    const subscription = () => ({
      endpoint,
      expirationTime: null,
      toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
      unsubscribe: () => { localStorage.removeItem(stored); return Promise.resolve(true); },
    });
    PushManager.prototype.subscribe = function (options?: PushSubscriptionOptionsInit) {
      const key = new Uint8Array(options?.applicationServerKey as ArrayBuffer);
      localStorage.setItem('test-application-server-key', btoa(String.fromCharCode(...key)));
      localStorage.setItem(stored, String(options?.userVisibleOnly));
      return Promise.resolve(subscription() as unknown as PushSubscription);
    };
    PushManager.prototype.getSubscription = function () {
      return Promise.resolve((localStorage.getItem(stored) ? subscription() : null) as unknown as PushSubscription);
    };
  }, [endpoint, p256dh, auth]);
}

async function waitFor<T>(find: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('the app is installable: manifest, icons and a service worker for the whole site', async ({ page, request }) => {
  await page.goto('/');
  await hydrated(page);
  const href = await page.locator('link[rel=manifest]').getAttribute('href');
  expect(href).toBe('/manifest.webmanifest');
  const manifest = await (await request.get(href!)).json();
  expect(manifest).toMatchObject({ name: 'Countersign', start_url: '/inbox', scope: '/', display: 'standalone' });
  for (const icon of manifest.icons.filter((i: { type: string }) => i.type === 'image/png')) {
    const res = await request.get(icon.src);
    expect(res.status(), icon.src).toBe(200);
    expect(res.headers()['content-type']).toBe('image/png');
  }
  expect(manifest.icons.map((i: { sizes: string }) => i.sizes)).toEqual(expect.arrayContaining(['192x192', '512x512']));
  const worker = await page.evaluate(async () => {
    const registration = await navigator.serviceWorker.ready;
    return { scope: registration.scope, script: registration.active?.scriptURL };
  });
  expect(new URL(worker.scope).pathname).toBe('/');
  expect(new URL(worker.script!).pathname).toBe('/sw.js');
});

test('an approver turns on notifications and a new request is pushed to the browser, encrypted', async ({ page }, testInfo) => {
  const receiver = await pushReceiver();
  try {
    const keys = browserKeys();
    const endpoint = `${receiver.origin}/push/${testInfo.project.name}`;
    await stubPushManager(page, endpoint, keys.p256dh, keys.auth);
    const email = await enrolledApprover(page, 'Nora Notified');
    // The inbox points the way once it has seen that this browser could, but does not, get them.
    const hint = page.getByRole('link', { name: 'turn on notifications on this device' });
    await expect(hint).toBeVisible();
    await hint.click();
    await expect(page).toHaveURL(/\/account#notifications-heading$/);
    await hydrated(page);
    const card = page.locator('section', { has: page.getByRole('heading', { name: 'Notifications' }) });
    await expect(card.getByText('No device receives notifications yet.')).toBeVisible();
    await card.getByRole('button', { name: 'Turn on notifications on this device' }).click();
    await expect(card.getByRole('status')).toHaveText('Notifications are on for this device.');
    await expect(card.getByText(/\(this device\)/)).toBeVisible();
    await expect(card.getByRole('button', { name: 'Turn off on this device' })).toBeVisible();
    // The inbox no longer asks.
    await page.goto('/inbox');
    await hydrated(page);
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.waitForTimeout(500);
    await expect(hint).toHaveCount(0);
    await page.goto('/account');
    await hydrated(page);
    // The page subscribed with the server's VAPID key, for visible notifications only.
    expect(await page.evaluate(() => localStorage.getItem('test-push-subscription'))).toBe('true');
    const applicationServerKey = await page.evaluate(() => localStorage.getItem('test-application-server-key'));
    expect(Buffer.from(applicationServerKey!, 'base64').length).toBe(65);
    await page.screenshot({ path: `screenshots/account-notifications-${testInfo.project.name}.png`, fullPage: true });

    const agent = agentRequest(newClient(), email, 'Rotate', 'the production signing key', 'Old tokens stop working.');
    const delivery = await waitFor(() => receiver.deliveries.find((d) => d.path.endsWith(testInfo.project.name)), 'a push');
    expect(delivery.headers['content-encoding']).toBe('aes128gcm');
    expect(delivery.headers.urgency).toBe('high');
    const authorization = String(delivery.headers.authorization);
    expect(authorization).toMatch(/^vapid t=[\w-]+\.[\w-]+\.[\w-]+, k=[\w-]+$/);
    expect(Buffer.from(authorization.split('k=')[1], 'base64url')).toEqual(Buffer.from(applicationServerKey!, 'base64'));
    const payload = JSON.parse(ece.decrypt(delivery.body, {
      version: 'aes128gcm', privateKey: keys.ecdh, authSecret: keys.auth,
    }).toString('utf8'));
    expect(payload.title).toBe('Approval needed: Rotate');
    expect(payload.body).toBe('Refund agent asks: Rotate \u2014 the production signing key');
    expect(payload.url).toMatch(/^\/requests\/[\w-]+$/);
    // The link opens the request; deny it so the agent finishes.
    await page.goto(payload.url);
    await expect(page.locator('.statement-box')).toContainText('the production signing key');
    await hydrated(page);
    await page.getByRole('button', { name: 'Deny' }).click();
    await expect(page.getByRole('status')).toContainText('You denied this request');
    expect((await agent).code).toBe(2);

    await page.goto('/account');
    await hydrated(page);
    await card.getByRole('button', { name: 'Send a test notification' }).click();
    await expect(card.getByRole('status')).toHaveText('A test notification was sent to 1 device.');
    const test = await waitFor(() => receiver.deliveries.slice(1).find((d) => d.path.endsWith(testInfo.project.name)), 'a test push');
    const testPayload = JSON.parse(ece.decrypt(test.body, {
      version: 'aes128gcm', privateKey: keys.ecdh, authSecret: keys.auth,
    }).toString('utf8'));
    expect(testPayload.title).toBe('Countersign notifications work');

    await card.getByRole('button', { name: 'Turn off on this device' }).click();
    await expect(card.getByRole('status')).toHaveText('Notifications are off for this device.');
    await expect(card.getByText('No device receives notifications yet.')).toBeVisible();
    await expect(card.getByRole('button', { name: 'Turn on notifications on this device' })).toBeVisible();
  } finally {
    receiver.close();
  }
});

test('the service worker shows a pushed request as a notification', async ({ page }) => {
  await page.context().grantPermissions(['notifications']);
  await page.goto('/');
  await hydrated(page);
  await page.evaluate(() => navigator.serviceWorker.ready);
  const cdp = await page.context().newCDPSession(page);
  const registered = new Promise<string>((resolve) => {
    cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
      const ours = registrations.find((r: { scopeURL: string; isDeleted: boolean }) => !r.isDeleted && new URL(r.scopeURL).pathname === '/');
      if (ours) resolve(ours.registrationId);
    });
  });
  await cdp.send('ServiceWorker.enable');
  const registrationId = await registered;
  const origin = new URL(page.url()).origin;
  // Every notification shown, once one with the payload's tag is. A push delivered through CDP is sometimes dropped on a
  // loaded machine (the suite's parallel tests), so it is delivered again, up to three times; a repeat
  // replaces the notification of the same tag rather than adding one.
  const pushUntilShown = async (payload: Record<string, string>) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data: JSON.stringify(payload) });
      const shown = await page.evaluate(async (tag) => {
        const registration = await navigator.serviceWorker.ready;
        for (let i = 0; i < 50; i++) {
          const list = await registration.getNotifications();
          if (list.some((n) => n.tag === tag)) return list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }));
          await new Promise((r) => setTimeout(r, 100));
        }
        return [];
      }, payload.tag);
      if (shown.length) return shown;
    }
    return [];
  };
  const shown = await pushUntilShown({ title: 'Approval needed: Refund $5.00', body: 'Refund agent asks: Refund $5.00 \u2014 order #9', url: '/requests/x', tag: 'request-x' });
  expect(shown).toEqual([{
    title: 'Approval needed: Refund $5.00', body: 'Refund agent asks: Refund $5.00 \u2014 order #9', tag: 'request-x',
    data: { url: `${origin}/requests/x` },
  }]);

  // A payload naming another site opens the inbox instead.
  const evil = (await pushUntilShown({ title: 'Elsewhere', body: 'b', url: '//evil.example/phish', tag: 'evil' }))
    .find((n) => n.tag === 'evil');
  const rewritten = evil?.data.url;
  expect(rewritten).toBe(`${origin}/inbox`);
});

test('a subscription on an unknown push service is refused', async ({ page, allowConsoleError }) => {
  allowConsoleError(refusalBy('subscribe_push', 422));
  const keys = browserKeys();
  await stubPushManager(page, 'https://push.evil.example/steal', keys.p256dh, keys.auth);
  await enrolledApprover(page, 'Rita Refused');
  await page.goto('/account');
  await hydrated(page);
  const card = page.locator('section', { has: page.getByRole('heading', { name: 'Notifications' }) });
  await card.getByRole('button', { name: 'Turn on notifications on this device' }).click();
  await expect(card.getByRole('alert')).toHaveText("This browser's push subscription cannot be used. Try another browser.");
  await expect(card.getByText('No device receives notifications yet.')).toBeVisible();
});
