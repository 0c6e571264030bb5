// First visit of a request page on a phone over slow 4G: the release server and bundle (`make build`),
// Chromium at 390×844 with an empty cache, the network throttled by CDP
// (Network.emulateNetworkConditions: 150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up, Lighthouse's
// slow-4G figures). Measures the bytes transferred and the time from navigation until the page has
// hydrated, i.e. until "Approve with passkey" works. Five runs; prints each and the median.
// ACCEPT_ENCODING=gzip (or identity) measures a browser that cannot take brotli (or any compression).
// Usage (after make build; make bench runs it): node bench/first-visit.mjs
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { bin, enroll, launch, ready, root } from './common.mjs';

const runs = Number(process.env.RUNS ?? 5);
const port = 3950;
const origin = `http://localhost:${port}`;
const work = mkdtempSync(join(tmpdir(), 'countersign-first-visit-'));
const env = {
  ...process.env, RUST_LOG: 'warn', DATABASE_URL: `sqlite://${work}/countersign.db`,
  LEPTOS_SITE_ADDR: `127.0.0.1:${port}`, LEPTOS_SITE_ROOT: join(root, 'target/site'), COUNTERSIGN_PUBLIC_URL: origin,
};
const cli = (...args) => execFileSync(bin, args, { env, encoding: 'utf8' }).trim();
const slow4g = { offline: false, latency: 150, downloadThroughput: 1.6e6 / 8, uploadThroughput: 750e3 / 8 };
const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

const server = spawn(bin, ['serve'], { env, stdio: 'ignore' });
const agents = [];
const browser = await launch(['--disable-quic']);
try {
  await ready(origin);
  // An approver enrolled with a virtual passkey, and a request waiting for them.
  const email = 'first-visit@example.com';
  const link = cli('approver', 'invite', '--email', email, '--name', 'First Visit');
  const client = JSON.parse(cli('client', 'create', '--name', 'Bench agent', '--delivery', 'poll', '--json'));
  const setup = await browser.newContext(phone);
  const page = await setup.newPage();
  await enroll(page, link);
  const agent = spawn(bin, ['agent', 'request', '--issuer', origin, '--client-id', client.client_id,
    '--client-secret', client.client_secret, '--login-hint', email, '--action', 'Refund $120.00',
    '--target', 'order #1234', '--consequence', 'The money leaves the company account.'], { env, stdio: 'ignore' });
  agents.push(agent);
  const line = page.getByRole('link', { name: /Refund/ });
  await line.waitFor({ timeout: 15_000 });
  const url = new URL(await line.getAttribute('href'), origin).href;
  const signedIn = await setup.storageState();
  await setup.close();

  const results = [];
  for (let run = 0; run < runs; run++) {
    const context = await browser.newContext({ ...phone, storageState: signedIn });
    const visit = await context.newPage();
    const net = await context.newCDPSession(visit);
    await net.send('Network.enable');
    await net.send('Network.setCacheDisabled', { cacheDisabled: true });
    await net.send('Network.emulateNetworkConditions', slow4g);
    if (process.env.ACCEPT_ENCODING) {
      await net.send('Network.setExtraHTTPHeaders', { headers: { 'Accept-Encoding': process.env.ACCEPT_ENCODING } });
    }
    let bytes = 0;
    net.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; });
    // Records when the app marks the document hydrated (the Approve button has its handler from then on).
    await visit.addInitScript(() => {
      new MutationObserver((_, observer) => {
        if (document.documentElement.hasAttribute('data-hydrated')) {
          window.__hydratedAt = performance.now();
          observer.disconnect();
        }
      }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-hydrated'] });
    });
    await visit.goto(url);
    await visit.locator('html[data-hydrated]').waitFor({ state: 'attached', timeout: 30_000 });
    await visit.getByRole('button', { name: 'Approve with passkey' }).waitFor();
    await visit.waitForLoadState('networkidle');
    const ms = await visit.evaluate(() => window.__hydratedAt);
    results.push({ bytes, ms });
    console.log(`run ${run + 1}: ${(bytes / 1000).toFixed(1)} kB transferred, Approve works after ${(ms / 1000).toFixed(2)} s`);
    await context.close();
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`first visit of a request page, phone, slow 4G, Accept-Encoding ${process.env.ACCEPT_ENCODING ?? 'as Chromium sends it'}: median ${(median(results.map((r) => r.bytes)) / 1000).toFixed(1)} kB,` +
    ` Approve works after ${(median(results.map((r) => r.ms)) / 1000).toFixed(2)} s (${runs} runs)`);
} finally {
  for (const agent of agents) agent.kill();
  await browser.close();
  server.kill();
  rmSync(work, { recursive: true, force: true });
}
