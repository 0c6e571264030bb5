// What the browser benchmarks share: Playwright from the browser tests' packages, Chromium as this
// machine has it, a server that is ready, and an approver enrolled with a virtual passkey.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const bin = process.env.COUNTERSIGN_BIN ?? join(root, 'target/release/countersign');
const { chromium } = createRequire(join(root, 'end2end', 'package.json'))('@playwright/test');

export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', ...extraArgs],
  });
}

/** Waits (up to 10 s) until the server at `origin` answers discovery. */
export async function ready(origin) {
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`${origin}/.well-known/openid-configuration`)).ok) return; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${origin}`);
}

/** Enrolls through the invitation `link` with a virtual passkey in `page`; leaves it on the inbox. */
export async function enroll(page, link) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { protocol: 'ctap2', transport: 'internal',
    hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true } });
  await page.goto(link);
  await page.locator('html[data-hydrated]').waitFor({ state: 'attached' });
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await page.waitForURL(/\/inbox$/);
}
