// Shared helpers: the countersign command line on the test server's database, and Chromium's WebAuthn
// virtual authenticator (CTAP2, internal transport, resident keys, user verification).
import { execFileSync } from 'node:child_process';
import { test } from './fixtures';
import type { Page, CDPSession } from '@playwright/test';

/** The release binary `make run` serves (`make build`); `make test` passes the same path. */
export const bin = process.env.COUNTERSIGN_BIN ?? '../target/release/countersign';

/** The server the running test's project talks to (see playwright.config.ts). */
interface Backend { port: number; databaseUrl: string; keyFile: string; checkpointDir: string }
function backend(): Backend {
  return test.info().project.metadata as Backend;
}

/** The countersign command line, on the database of the current project's server. */
export function countersign(...args: string[]): string {
  const { port, databaseUrl, keyFile, checkpointDir } = backend();
  return execFileSync(bin, args, {
    env: { ...process.env, DATABASE_URL: databaseUrl, COUNTERSIGN_KEY_FILE: keyFile,
      COUNTERSIGN_CHECKPOINT_DIR: checkpointDir, COUNTERSIGN_ALLOW_LOOPBACK_NOTIFY: '1', RUST_LOG: 'warn', COUNTERSIGN_PUBLIC_URL: `http://localhost:${port}` },
    encoding: 'utf8',
  }).trim();
}

/** A one-time enrollment link for a new approver, as a path on the test server. */
export function invite(email: string, name: string, ...extra: string[]): string {
  const link = countersign('approver', 'invite', '--email', email, '--name', name, ...extra);
  return new URL(link).pathname;
}

/** A virtual authenticator: built in (`internal`, one per browser at most) or a security key (`usb`). */
export async function addAuthenticator(page: Page, transport: 'internal' | 'usb' = 'internal'): Promise<{ cdp: CDPSession; id: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport, hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return { cdp, id: authenticatorId };
}

/** Waits until the page's wasm has hydrated (the app marks the document), so buttons have their handlers. */
export async function hydrated(page: Page) {
  await page.locator('html[data-hydrated]').waitFor({ state: 'attached' });
}

export function unique(prefix: string): string {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

import { spawn } from 'node:child_process';

export interface AgentRun { code: number | null; stdout: string; stderr: string }

/** Starts the reference agent (`countersign agent request`); resolves when it exits. */
export function agentRequest(client: { client_id: string; client_secret: string }, email: string,
  action: string, target: string, consequence: string, ...extra: string[]): Promise<AgentRun> & { output: () => string } {
  const child = spawn(bin, ['agent', 'request', '--issuer', `http://localhost:${backend().port}`,
    '--client-id', client.client_id, '--client-secret', client.client_secret, '--login-hint', email,
    '--action', action, '--target', target, '--consequence', consequence, ...extra],
  { env: { ...process.env, RUST_LOG: 'warn' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise<AgentRun>((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  return Object.assign(done, { output: () => `agent stdout: ${stdout}\nagent stderr: ${stderr}` });
}

export function newClient(): { client_id: string; client_secret: string } {
  return JSON.parse(countersign('client', 'create', '--name', 'Refund agent', '--delivery', 'poll', '--json'));
}

/** Enrolls a fresh approver in this page's browser context and leaves them signed in. */
export async function enrolledApprover(page: Page, name: string): Promise<string> {
  await addAuthenticator(page);
  const email = unique(name.toLowerCase().split(' ')[0]);
  await page.goto(invite(email, name));
  await hydrated(page);
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await page.waitForURL(/\/inbox$/);
  return email;
}

/** A backchannel authentication request from `client` to `email` for one action; asserts it started. */
export async function askFor(baseURL: string, client: { client_id: string; client_secret: string }, email: string,
  action: string, target: string): Promise<void> {
  const response = await fetch(new URL('/bc-authorize', baseURL), {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      scope: 'openid', login_hint: email,
      authorization_details: JSON.stringify([{ type: 'agent_action', action, target,
        consequence: 'It cannot be undone.' }]),
    }),
  });
  if (response.status !== 200) throw new Error(`bc-authorize answered ${response.status}: ${await response.text()}`);
}
