// The admin console: the history of every request with filters in the URL, one request in full with
// its decision record re-verified, and the admin check made on the server for every admin call. The
// content is rendered on the server (none of it is in the browser bundle).
import { existsSync, readFileSync } from 'node:fs';
import { test, expect } from './fixtures';
import type { Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { addAuthenticator, askFor, enrolledApprover, hydrated, invite, newClient, unique } from './helpers';

async function enrolledAdmin(page: Page, name: string): Promise<string> {
  await addAuthenticator(page);
  const email = unique(name.toLowerCase().split(' ')[0]);
  await page.goto(invite(email, name, '--admin'));
  await hydrated(page);
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await page.waitForURL(/\/inbox$/);
  return email;
}

async function violations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return results.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

test('an admin reads the history, filters it, and opens a request whose record verifies', async ({ page, baseURL }, testInfo) => {
  const email = await enrolledAdmin(page, 'Ada Admin');
  const client = newClient();
  const marker = `${Date.now()}`;
  await askFor(baseURL!, client, email, `Refund ${marker}`, 'order #1234');
  await askFor(baseURL!, client, email, `Delete ${marker}`, 'repository "legacy"');
  // Agent text that a spreadsheet would take for a formula.
  await askFor(baseURL!, client, email, `=HYPERLINK("https://evil.example","Pay ${marker}")`, 'order #1');
  // The admin decides both, as the approver they also are.
  for (const [action, button] of [[`Refund ${marker}`, 'Approve with passkey'], [`Delete ${marker}`, 'Deny']]) {
    await page.goto('/inbox');
    await page.getByRole('link', { name: new RegExp(action) }).click();
    await hydrated(page);
    await page.getByRole('button', { name: button }).click();
    await expect(page.getByRole('status')).toContainText(button === 'Deny' ? 'You denied' : 'You approved');
  }

  await page.goto('/inbox');
  await page.getByRole('link', { name: 'Approval history (admin)' }).click();
  await hydrated(page);
  const rows = page.getByRole('region', { name: 'Requests, newest first' }).getByRole('row');
  await expect(rows.filter({ hasText: `Refund ${marker}` })).toContainText('Approved');
  await expect(rows.filter({ hasText: `Delete ${marker}` })).toContainText('Denied');
  expect(await violations(page), 'history').toEqual([]);
  await page.screenshot({ path: `screenshots/admin-history-${testInfo.project.name}.png`, fullPage: true });

  // At a glance: requests per day and decision times, drawn on the server.
  await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'At a glance' }).click();
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'The last 30 days' })).toBeVisible();
  await expect(page.getByRole('img', { name: /requests from .* the busiest day had/ })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Time to decision per agent' }).getByRole('row', { name: /Refund agent/ }).first())
    .toBeVisible();
  expect(await violations(page), 'overview').toEqual([]);
  await page.screenshot({ path: `screenshots/admin-overview-${testInfo.project.name}.png`, fullPage: true });
  await page.goto('/admin');

  // Filters go into the URL, so the view can be shared.
  await page.getByLabel('Status').selectOption('denied');
  await page.getByLabel('Action or target').fill(marker);
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/status=denied/);
  await expect(page).toHaveURL(new RegExp(`q=${marker}`));
  await expect(rows.filter({ hasText: `Delete ${marker}` })).toBeVisible();
  await expect(rows.filter({ hasText: `Refund ${marker}` })).toHaveCount(0);
  const shared = page.url();
  await page.goto(shared);
  await expect(page.getByLabel('Status')).toHaveValue('denied');
  await expect(rows.filter({ hasText: `Delete ${marker}` })).toBeVisible();

  // The export holds every matching request, streamed; formulas stay text.
  const csvLink = page.getByRole('link', { name: 'CSV' });
  const csv = await (await page.request.get(await csvLink.getAttribute('href') as string)).text();
  const csvLines = csv.trim().split('\n');
  expect(csvLines[0]).toBe('request,asked_at,agent,approver,action,target,status,decided_at,delivery,agent_id');
  expect(csvLines).toHaveLength(2);
  expect(csvLines[1]).toContain(`Delete ${marker}`);
  expect(csvLines[1]).toContain(',denied,');
  const everything = await page.request.get(`/admin/export?format=jsonl&q=${marker}`);
  expect(everything.headers()['content-type']).toBe('application/jsonl');
  const lines = (await everything.text()).trim().split('\n').map((l) => JSON.parse(l));
  expect(lines.map((l) => l.status).sort()).toEqual(['approved', 'denied', 'pending']);
  const formula = await (await page.request.get(`/admin/export?format=csv&q=${marker}&status=pending`)).text();
  expect(formula).toContain(`"'=HYPERLINK(`);

  await page.goto(`/admin?q=${marker}&status=approved`);
  await page.getByRole('link', { name: new RegExp(`Refund ${marker}`) }).click();
  await hydrated(page);
  await expect(page.locator('.statement')).toContainText(`Refund ${marker}`);
  await expect(page.locator('.verdict')).toHaveText('The decision record verifies.');
  const checks = page.locator('.checks li');
  await expect(checks).toHaveCount(7);
  await expect(checks.filter({ hasText: 'Decided by someone it was addressed to' })).toHaveCount(1);
  await expect(page.locator('.checks li.failed')).toHaveCount(0);
  await expect(page.locator('pre.raw').first()).toContainText('"authorization_details"');
  // No auth_req_id in the address bar: page references only.
  expect(page.url()).toMatch(/\/admin\/requests\/[0-9a-f]{12}[A-Za-z0-9_-]{22}$/);
  expect(await violations(page), 'detail').toEqual([]);
  await page.screenshot({ path: `screenshots/admin-request-${testInfo.project.name}.png`, fullPage: true });
});

test('an approver is refused the admin pages and every admin server function, with 403', async ({ page, baseURL, allowConsoleError }) => {
  allowConsoleError(/status of 403/);
  await enrolledApprover(page, 'Otto Ordinary');
  await expect(page.getByRole('link', { name: 'Approval history (admin)' })).toHaveCount(0);
  const response = await page.goto('/admin');
  expect(response!.status()).toBe(403);
  await expect(page.getByRole('heading', { name: 'Admins only' })).toBeVisible();
  const detail = await page.goto('/admin/requests/0000000000000000000000000000000000');
  expect(detail!.status()).toBe(403);
  expect((await page.request.get('/admin/export?format=csv')).status()).toBe(403);
  const origin = { Origin: new URL(baseURL!).origin };
  expect((await page.request.post('/admin/agents/register', { form: { name: 'Sneaky' }, headers: origin })).status()).toBe(403);
  for (const path of ['/admin/agents/x/disable', '/admin/agents/x/settings', '/admin/approvers/x/promote',
    '/admin/approvers/x/passkeys/y/revoke', '/admin/approvers/invite', '/admin/confirm/cancel']) {
    expect((await page.request.post(path, { form: { delivery: 'poll' }, headers: origin })).status(), path).toBe(403);
  }
  // The one admin server function, for each admin page.
  for (const path of ['/admin', '/admin/confirm', '/admin/requests/0000000000000000000000000000000000']) {
    const answer = await page.request.post('/api/admin', {
      data: { path, query: '' }, headers: { Origin: new URL(baseURL!).origin },
    });
    expect(answer.status(), path).toBe(403);
    expect(await answer.text(), path).not.toContain('<table');
  }
});

test('an admin registers an agent, sees its secret once, rotates it, changes its delivery, disables it, and the admin log says so', async ({ page, baseURL }, testInfo) => {
  const email = await enrolledAdmin(page, 'Ada Agents');
  await page.goto('/admin/agents');
  await hydrated(page);
  const name = `Invoice agent ${Date.now()}`;
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.locator('select[name=delivery]').selectOption('poll');
  await page.getByLabel('email', { exact: true }).check();
  await page.getByRole('button', { name: 'Register' }).click();
  await expect(page.getByRole('heading', { name, level: 1 })).toBeVisible();
  const secret = (await page.locator('.secret-value').textContent())!;
  const clientId = (await page.locator('.facts dd code').first().textContent())!;
  expect(secret.length).toBeGreaterThan(30);
  await page.screenshot({ path: `screenshots/admin-agent-${testInfo.project.name}.png`, fullPage: true });
  expect(await violations(page), 'agent').toEqual([]);
  // From below: the secret went to the next page through the session, which is stored in the
  // database, sealed (on SQLite the database is a file this test can read, write-ahead log and all).
  const databaseUrl = (testInfo.project.metadata as { databaseUrl: string }).databaseUrl;
  if (databaseUrl.startsWith('sqlite://')) {
    const file = databaseUrl.slice('sqlite://'.length);
    for (const part of [file, `${file}-wal`]) {
      if (existsSync(part)) expect(readFileSync(part).includes(secret), part).toBe(false);
    }
  }
  // The secret works, and is never shown again.
  await askFor(baseURL!, { client_id: clientId, client_secret: secret }, email, 'Pay', 'invoice 7');
  await page.reload();
  await expect(page.locator('.secret-value')).toHaveCount(0);

  await page.getByRole('button', { name: 'Rotate the secret' }).click();
  const rotated = (await page.locator('.secret-value').textContent())!;
  expect(rotated).not.toBe(secret);
  const status = (clientSecret: string) => fetch(new URL('/bc-authorize', baseURL!), {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: '',
  }).then((r) => r.status);
  // The running server's agent directory refreshes within a second.
  await expect.poll(() => status(secret)).toBe(401);
  expect(await status(rotated)).toBe(400); // authenticated: the empty request itself is refused

  // Delivery and scopes: refused as at registration, then changed.
  await page.locator('select[name=delivery]').selectOption('ping');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('alert')).toHaveText('ping and push clients need a notification URL');
  await expect(page.locator('.facts')).toContainText('poll');
  await page.locator('select[name=delivery]').selectOption('ping');
  await page.getByLabel('Notification URL (ping and push)').fill('https://agent.example/countersign');
  await page.getByLabel('profile', { exact: true }).check();
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved' })).toBeVisible();
  const facts = page.locator('.facts');
  await expect(facts).toContainText('https://agent.example/countersign');
  await expect(facts).toContainText('openid profile email');
  await expect(page.locator('select[name=delivery]')).toHaveValue('ping');
  expect(await violations(page), 'agent settings').toEqual([]);

  await page.getByRole('button', { name: 'Disable the agent' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'The agent is disabled' })).toBeVisible();
  await expect.poll(() => status(rotated)).toBe(401);

  await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Agents' }).click();
  await expect(page.getByRole('row', { name: new RegExp(name) })).toContainText('Disabled');
  expect(await violations(page), 'agents').toEqual([]);
  await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Admin log' }).click();
  const entries = page.getByRole('row').filter({ hasText: clientId });
  await expect(entries).toHaveCount(4);
  await expect(entries.first()).toContainText('disabled an agent');
  await expect(entries.nth(1)).toContainText('changed an agent\'s settings');
  await expect(entries.nth(1)).toContainText('ping delivery to https://agent.example/countersign');
  await expect(entries.nth(3)).toContainText('registered an agent');
  await expect(entries.first()).toContainText(email);
  expect(await violations(page), 'admin log').toEqual([]);
});

test('an admin invites an approver with a link and a QR code, revokes their passkey, makes them an admin, and offboards them', async ({ page, newContext }, testInfo) => {
  await enrolledAdmin(page, 'Ada Approvers');
  await page.goto('/admin/approvers');
  await hydrated(page);
  const email = unique('nia');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Name', { exact: true }).fill('Nia Newbie');
  await page.getByRole('button', { name: 'Make an enrollment link' }).click();
  // Issue 22: every change to who can approve is confirmed with the admin's passkey first.
  await expect(page).toHaveURL(/\/admin\/confirm$/);
  await expect(page.getByRole('heading', { name: `Make an enrollment link for ${email}, as an approver` })).toBeVisible();
  await hydrated(page);
  expect(await violations(page), 'confirm').toEqual([]);
  await page.screenshot({ path: `screenshots/admin-confirm-${testInfo.project.name}.png`, fullPage: true });
  await page.getByRole('button', { name: 'Confirm with your passkey' }).click();
  await expect(page.getByRole('heading', { name: `Enrollment link for ${email}` })).toBeVisible();
  const link = (await page.locator('.secret-value').textContent())!;
  await expect(page.getByRole('img', { name: 'The enrollment link as a QR code' }).locator('svg')).toBeVisible();
  expect(await violations(page), 'approvers').toEqual([]);
  await page.screenshot({ path: `screenshots/admin-approvers-${testInfo.project.name}.png`, fullPage: true });

  // The link enrolls them, in a browser of their own.
  const theirs = await newContext({ baseURL: new URL(link).origin });
  const phone = await theirs.newPage();
  await addAuthenticator(phone);
  await phone.goto(new URL(link).pathname);
  await hydrated(phone);
  await phone.getByRole('button', { name: 'Create passkey' }).click();
  await phone.waitForURL(/\/inbox$/);

  await page.goto('/admin/approvers');
  const row = page.getByRole('row', { name: new RegExp(email) });
  await expect(row).toContainText('Approver');
  await expect(row.locator('summary')).toHaveText('1 passkey');
  // Revoked (lost, say): the session made with it ends.
  await row.locator('summary').click();
  await expect(row.getByText(/added .*, never used/)).toBeVisible(); // enrolled, not yet used to sign in
  expect(await violations(page), 'approvers with passkeys open').toEqual([]);
  await page.screenshot({ path: `screenshots/admin-passkeys-${testInfo.project.name}.png`, fullPage: true });
  await row.getByRole('button', { name: /^Revoke Nia Newbie's passkey / }).click();
  await confirmChange(page, /^Revoke Nia Newbie's passkey/);
  await expect(page.getByRole('status').filter({ hasText: 'The passkey is revoked' })).toBeVisible();
  await expect(row.locator('summary')).toHaveText('None');
  await phone.goto('/inbox');
  await expect(phone).toHaveURL(/\/sign-in/);

  await row.getByRole('button', { name: 'Make admin' }).click();
  await confirmChange(page, `Make Nia Newbie (${email}) an admin`);
  await expect(page.getByRole('status').filter({ hasText: 'They are an admin now.' })).toBeVisible();
  await expect(row.getByRole('cell').nth(1)).toHaveText('Admin');
  // Cancelled, nothing changes.
  await row.getByRole('button', { name: 'Disable', exact: true }).click();
  await expect(page).toHaveURL(/\/admin\/confirm$/);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page).toHaveURL(/\/admin\/approvers$/);
  await expect(row.getByRole('cell').nth(2)).toHaveText('Active');
  await row.getByRole('button', { name: 'Disable', exact: true }).click();
  await confirmChange(page, /^Disable Nia Newbie/);
  await expect(row.getByRole('cell').nth(2)).toHaveText('Disabled');

  await page.goto('/admin/log');
  const entries = page.getByRole('row').filter({ hasText: email });
  await expect(entries).toHaveCount(4);
  await expect(entries.first()).toContainText('disabled an approver');
  await expect(entries.nth(2)).toContainText('revoked a passkey');
  await expect(entries.nth(3)).toContainText('invited an approver');
});

/** On /admin/confirm: the change described as `what`, confirmed with the admin's passkey. */
async function confirmChange(page: Page, what: string | RegExp) {
  await expect(page).toHaveURL(/\/admin\/confirm$/);
  await expect(page.getByRole('heading', { name: what })).toBeVisible();
  await hydrated(page);
  await page.getByRole('button', { name: 'Confirm with your passkey' }).click();
  await expect(page).toHaveURL(/\/admin\/approvers$/);
}

// Issue 22: a rogue admin cannot make a link that enrolls them into an existing approver's account.
test('the console refuses an invitation for an approver who has a passkey, and makes no link', async ({ page, newContext, baseURL }) => {
  await enrolledAdmin(page, 'Ada Refuses');
  const theirs = await newContext({ baseURL });
  const jon = await enrolledApprover(await theirs.newPage(), 'Jon Enrolled');
  await page.goto('/admin/approvers');
  await hydrated(page);
  await page.getByLabel('E-mail').fill(jon);
  await page.getByRole('button', { name: 'Make an enrollment link' }).click();
  await expect(page.getByRole('alert')).toContainText(`${jon} already has a passkey`);
  await expect(page.getByRole('heading', { name: /Enrollment link for/ })).toHaveCount(0);
});

// Issue 22: someone who lost every passkey is recovered by two admins, never re-invited by one.
test('a recovery needs a second admin, ends the old passkeys, and its link enrolls a new one once', async ({ page, newContext, baseURL }, testInfo) => {
  await enrolledAdmin(page, 'Ada Recovers');
  const bob = await (await newContext({ baseURL })).newPage();
  await enrolledAdmin(bob, 'Bob Approves');
  const nia = await (await newContext({ baseURL })).newPage();
  const niaEmail = await enrolledApprover(nia, 'Nia Lost');

  await page.goto('/admin/approvers');
  await hydrated(page);
  await page.getByRole('row', { name: new RegExp(niaEmail) }).getByRole('button', { name: 'Recover Nia Lost' }).click();
  await confirmChange(page, /^Start recovering Nia Lost/);
  await expect(page.getByRole('status')).toContainText('The recovery is started');
  // The admin who started it cannot approve it: refused before any passkey prompt.
  await page.getByRole('button', { name: /^Approve recovering Nia Lost/ }).click();
  await expect(page).toHaveURL(/\/admin\/approvers$/);
  await expect(page.getByRole('alert')).toContainText('You started this recovery');
  await nia.goto('/inbox');
  await expect(nia).toHaveURL(/\/inbox$/); // nothing has ended yet

  // The second admin may decline it instead: cancelled, it cannot be approved, and Ada starts anew.
  await bob.goto('/admin/approvers');
  await hydrated(bob);
  await bob.getByRole('button', { name: /^Cancel recovering Nia Lost/ }).click();
  await confirmChange(bob, /^Cancel recovering Nia Lost/);
  await expect(bob.getByRole('status')).toContainText('The recovery is cancelled');
  await expect(bob.getByRole('button', { name: /^Approve recovering Nia Lost/ })).toHaveCount(0);
  await page.goto('/admin/approvers');
  await hydrated(page);
  await page.getByRole('row', { name: new RegExp(niaEmail) }).getByRole('button', { name: 'Recover Nia Lost' }).click();
  await confirmChange(page, /^Start recovering Nia Lost/);

  await bob.goto('/admin/approvers');
  await hydrated(bob);
  await bob.getByRole('button', { name: /^Approve recovering Nia Lost/ }).click();
  await confirmChange(bob, /^Approve recovering Nia Lost/);
  await expect(bob.getByRole('heading', { name: `Recovery link for ${niaEmail}` })).toBeVisible();
  const link = (await bob.locator('.secret-value').textContent())!;
  await bob.screenshot({ path: `screenshots/admin-recovery-${testInfo.project.name}.png`, fullPage: true });

  // Her old passkey and session have ended; the link enrolls a new passkey into her account, once.
  await nia.goto('/inbox');
  await expect(nia).toHaveURL(/\/sign-in/);
  await nia.goto(new URL(link).pathname);
  await expect(nia.getByText('Your account is being recovered: Nia Lost')).toBeVisible();
  await expect(nia.getByText('Your earlier passkeys no longer work.', { exact: false })).toBeVisible();
  await hydrated(nia);
  await nia.getByRole('button', { name: 'Create passkey' }).click();
  await nia.waitForURL(/\/inbox$/);
  await nia.goto('/account');
  await expect(nia.getByText(/with a recovery link, after your earlier passkeys ended/)).toBeVisible();
  await nia.goto(new URL(link).pathname);
  await expect(nia.getByText(/already been used/)).toBeVisible();
});
