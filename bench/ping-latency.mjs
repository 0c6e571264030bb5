// How soon a ping client hears of a decision (CIBA §10.2): the release server (`make build`) on
// loopback, a ping client whose notification endpoint is a Node server here, and an approver deciding
// on the real request page in Chromium. Each sample is the time from the page receiving the answer to
// its decision (the decision is committed by then) until the ping arrives; it is negative when the
// ping wins the race. SAMPLES (30) requests; prints the median, p99 and max. DATABASE_URL picks the
// database (a fresh SQLite file by default).
// Usage (after make build; make bench runs it): node bench/ping-latency.mjs
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { bin, enroll, launch, ready, root } from './common.mjs';

const samples = Number(process.env.SAMPLES ?? 30);
const port = 3961;
const origin = `http://localhost:${port}`;
const work = mkdtempSync(join(tmpdir(), 'countersign-ping-latency-'));
const env = {
  ...process.env, RUST_LOG: 'warn', DATABASE_URL: process.env.DATABASE_URL ?? `sqlite://${work}/countersign.db`,
  LEPTOS_SITE_ADDR: `127.0.0.1:${port}`, LEPTOS_SITE_ROOT: join(root, 'target/site'), COUNTERSIGN_PUBLIC_URL: origin,
  COUNTERSIGN_MAX_PENDING_PER_APPROVER: '0', COUNTERSIGN_MAX_REQUESTS_PER_MINUTE: '0',
  COUNTERSIGN_ALLOW_LOOPBACK_NOTIFY: '1', COUNTERSIGN_KEY_FILE: join(work, 'countersign.key'),
};
const cli = (...args) => execFileSync(bin, args, { env, encoding: 'utf8' }).trim();

// The agent's notification endpoint: stamps each ping's arrival by auth_req_id.
const arrived = new Map();
const endpoint = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    arrived.set(JSON.parse(body).auth_req_id, Date.now());
    res.writeHead(204).end();
  });
});
await new Promise((resolve) => endpoint.listen(0, '127.0.0.1', resolve));

const server = spawn(bin, ['serve'], { env, stdio: 'ignore' });
const browser = await launch();
try {
  await ready(origin);
  const email = `ping-latency-${Date.now()}@example.com`;
  const link = cli('approver', 'invite', '--email', email, '--name', 'Ping Latency');
  const client = JSON.parse(cli('client', 'create', '--name', 'Bench agent', '--delivery', 'ping',
    '--notify-url', `http://127.0.0.1:${endpoint.address().port}/ciba`, '--json'));
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await enroll(page, link);

  const basic = Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64');
  const latencies = [];
  for (let n = 0; n < samples; n++) {
    const details = JSON.stringify([{ type: 'agent_action', action: `Sample ${n}`, target: 'order 1', consequence: 'money leaves' }]);
    const res = await fetch(`${origin}/bc-authorize`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ scope: 'openid', login_hint: email, authorization_details: details,
        client_notification_token: `bench-${n}` }),
    });
    if (!res.ok) throw new Error(`bc-authorize: ${res.status} ${await res.text()}`);
    const { auth_req_id: id } = await res.json();
    await page.goto(`${origin}/inbox`);
    await page.getByRole('link', { name: new RegExp(`Sample ${n}\\b`) }).click();
    await page.locator('html[data-hydrated]').waitFor({ state: 'attached' });
    const answered = page.waitForResponse((r) => r.url().includes('/api/finish_decision'));
    await page.getByRole('button', { name: 'Approve with passkey' }).click();
    await answered;
    const decided = Date.now();
    for (let i = 0; i < 500 && !arrived.has(id); i++) await new Promise((r) => setTimeout(r, 2));
    if (!arrived.has(id)) throw new Error(`no ping for sample ${n}`);
    latencies.push(arrived.get(id) - decided);
  }
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)];
  console.log(`decision to ping on loopback (${env.DATABASE_URL.split(':')[0]}, ${samples} samples):` +
    ` median ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${latencies.at(-1)} ms (negative: the ping came first)`);
} finally {
  await browser.close();
  server.kill();
  endpoint.close();
  rmSync(work, { recursive: true, force: true });
}
