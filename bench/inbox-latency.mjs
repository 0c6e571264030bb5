// How soon a new request appears in an open inbox: the release server (`make build`) on loopback,
// Chromium at 1280×800 with an approver's inbox open, and an agent's /bc-authorize sent from here.
// Each sample is the time from sending the request until its line is in the page (a MutationObserver
// in the page stamps it; both clocks are this machine's). SAMPLES (100) requests, 50 ms apart; prints
// the median, p99 and max. DATABASE_URL picks the database (a fresh SQLite file by default).
// Usage (after make build; make bench runs it): node bench/inbox-latency.mjs
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { bin, enroll, launch, ready, root } from './common.mjs';

const samples = Number(process.env.SAMPLES ?? 100);
const port = 3960;
const origin = `http://localhost:${port}`;
const work = mkdtempSync(join(tmpdir(), 'countersign-inbox-latency-'));
const env = {
  ...process.env, RUST_LOG: 'warn', DATABASE_URL: process.env.DATABASE_URL ?? `sqlite://${work}/countersign.db`,
  LEPTOS_SITE_ADDR: `127.0.0.1:${port}`, LEPTOS_SITE_ROOT: join(root, 'target/site'), COUNTERSIGN_PUBLIC_URL: origin,
  COUNTERSIGN_MAX_PENDING_PER_APPROVER: '0', COUNTERSIGN_MAX_REQUESTS_PER_MINUTE: '0',
};
const cli = (...args) => execFileSync(bin, args, { env, encoding: 'utf8' }).trim();

const server = spawn(bin, ['serve'], { env, stdio: 'ignore' });
const browser = await launch();
try {
  await ready(origin);
  const email = `inbox-latency-${Date.now()}@example.com`;
  const link = cli('approver', 'invite', '--email', email, '--name', 'Inbox Latency');
  const client = JSON.parse(cli('client', 'create', '--name', 'Bench agent', '--delivery', 'poll', '--json'));
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await enroll(page, link);
  await page.locator('html[data-hydrated]').waitFor({ state: 'attached' });
  // Stamps (epoch ms) when each "Sample n" line first appears.
  await page.evaluate(() => {
    window.__seen = {};
    new MutationObserver(() => {
      for (const a of document.querySelectorAll('a.request-line')) {
        const m = /Sample (\d+)\b/.exec(a.textContent);
        if (m && !(m[1] in window.__seen)) window.__seen[m[1]] = performance.timeOrigin + performance.now();
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  await page.waitForTimeout(500); // the live stream is open

  const basic = Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64');
  const latencies = [];
  for (let n = 0; n < samples; n++) {
    const details = JSON.stringify([{ type: 'agent_action', action: `Sample ${n}`, target: 'order 1', consequence: 'money leaves' }]);
    const sent = Date.now();
    const res = await fetch(`${origin}/bc-authorize`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ scope: 'openid', login_hint: email, authorization_details: details }),
    });
    if (!res.ok) throw new Error(`bc-authorize: ${res.status} ${await res.text()}`);
    await page.waitForFunction((n) => n in window.__seen, String(n), { timeout: 10_000 });
    latencies.push((await page.evaluate((n) => window.__seen[n], String(n))) - sent);
    await new Promise((r) => setTimeout(r, 50));
  }
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)];
  console.log(`new request to its line in an open inbox (${env.DATABASE_URL.split(':')[0]}, ${samples} samples):` +
    ` median ${at(0.5).toFixed(0)} ms, p99 ${at(0.99).toFixed(0)} ms, max ${latencies.at(-1).toFixed(0)} ms`);
} finally {
  await browser.close();
  server.kill();
  rmSync(work, { recursive: true, force: true });
}
