// Requests to a group, and the two-person rule (issue 23): several people, each in their own browser
// with their own passkey, and the agent waiting until the rule its request is held to is met.
import { test, expect } from './fixtures';
import type { BrowserContext, BrowserContextOptions, Page } from '@playwright/test';
import { agentRequest, countersign, enrolledApprover, hydrated, newClient } from './helpers';

/** A group name no other test run uses. */
function groupName(prefix: string): string {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
}

/** A signed-in approver in a browser context of their own, watched like the test's own. */
async function approverIn(newContext: (o?: BrowserContextOptions) => Promise<BrowserContext>, name: string,
  viewport: { width: number; height: number } | null): Promise<{ page: Page; email: string }> {
  const context = await newContext(viewport ? { viewport } : undefined);
  const page = await context.newPage();
  const email = await enrolledApprover(page, name);
  return { page, email };
}

/** Opens the request `line` names from the inbox, hydrated. */
async function open(page: Page, line: RegExp) {
  const link = page.getByRole('link', { name: line });
  await expect(link).toBeVisible({ timeout: 10_000 });
  await link.click();
  await expect(page).toHaveURL(/\/requests\//);
  await hydrated(page);
}

test('a payment over 1,000 needs two people: the agent waits for the second approval', async ({ page, newContext }, testInfo) => {
  const viewport = page.viewportSize();
  const requester = `jane-${Date.now()}@example.com`;
  countersign('approver', 'add', '--email', requester, '--name', 'Jane Requester');
  const client = newClient();
  const group = groupName('finance');
  countersign('group', 'create', group);
  // A running server reads policies set on the command line within a second: the two enrollments
  // below take longer than that.
  countersign('policy', 'set', '--name', 'Payments over 1,000', '--agent', client.client_id,
    '--amount-above', '1000', '--approvals', '2', '--group', group);
  const ann = { page, email: await enrolledApprover(page, 'Ann Approver') };
  const bob = await approverIn(newContext, 'Bob Approver', viewport);
  countersign('group', 'add', group, '--email', ann.email);
  countersign('group', 'add', group, '--email', bob.email);

  // The agent acts for Jane; two others must approve.
  const agent = agentRequest(client, requester, 'Pay supplier invoice', 'ACME Ltd, invoice 77',
    'The money leaves the company account.', '--amount', '5000.00', '--currency', 'EUR', '--reversible', 'false');
  await open(ann.page, /Pay supplier invoice/);
  const parties = ann.page.locator('p.parties');
  await expect(parties).toContainText('Needs 2 approvals by different people, under the policy “Payments over 1,000” (version 1).');
  await expect(ann.page.locator('.statement-box')).toContainText('5000.00 EUR');
  await ann.page.screenshot({ path: `screenshots/quorum-first-${testInfo.project.name}.png`, fullPage: true });
  await expect.poll(agent.output, { timeout: 15_000 }).toContain('authorization_pending');
  await ann.page.getByRole('button', { name: 'Approve with passkey' }).click();
  await expect(ann.page.getByRole('status')).toHaveText('You approved. It needs 1 more approval before the agent can go ahead.');
  await expect(ann.page.getByRole('button', { name: 'Approve with passkey' })).toHaveCount(0);

  // Bob sees Ann's approval, and the agent is still waiting.
  await open(bob.page, /Pay supplier invoice/);
  await expect(bob.page.locator('p.parties')).toContainText(`Approved so far by Ann Approver (${ann.email}).`);
  const before = agent.output();
  expect(before).not.toContain('access_token');
  await bob.page.getByRole('button', { name: 'Approve with passkey' }).click();
  await expect(bob.page.getByRole('status')).toHaveText(
    `Approved by Ann Approver (${ann.email}) and you. The agent can go ahead with exactly this action.`);
  await bob.page.screenshot({ path: `screenshots/quorum-done-${testInfo.project.name}.png`, fullPage: true });
  const run = await agent;
  expect(run.code, agent.output()).toBe(0);
  const tokens = JSON.parse(run.stdout);
  expect(tokens.authorization_details[0].amount).toBe('5000.00');
  // Each approval is its own record, signed by its own passkey, and the audit holds the request to
  // its policy.
  const audit = JSON.parse(countersign('audit', 'verify', '--json'));
  expect(audit.findings).toEqual([]);
  expect(audit.signatures_verified).toBe(audit.records);
});

test('a request to a group: one member decides, and the other member\'s open page says so at once', async ({ page, newContext }, testInfo) => {
  const viewport = page.viewportSize();
  const ann = { page, email: await enrolledApprover(page, 'Ann Oncall') };
  const bob = await approverIn(newContext, 'Bob Oncall', viewport);
  const client = newClient();
  const group = groupName('oncall');
  countersign('group', 'create', group);
  countersign('group', 'add', group, '--email', ann.email);
  countersign('group', 'add', group, '--email', bob.email);
  countersign('group', 'allow', group, '--agent', client.client_id);

  const agent = agentRequest(client, `group:${group}`, 'Restart', 'the payments service in eu-west-1',
    'Requests in flight fail once.');
  await open(ann.page, /Restart/);
  await open(bob.page, /Restart/);
  await expect(bob.page.locator('p.parties')).toHaveText(`Sent to the group ${group}: whoever decides first settles it for everyone.`);
  await expect(bob.page.getByRole('button', { name: 'Approve with passkey' })).toBeVisible();
  await expect.poll(agent.output, { timeout: 15_000 }).toContain('authorization_pending');

  await ann.page.getByRole('button', { name: 'Approve with passkey' }).click();
  await expect(ann.page.getByRole('status')).toContainText('Approved by you.');
  // Bob's page, untouched, moves on by itself: no buttons, and who decided.
  await expect(bob.page.getByRole('status')).toHaveText(
    `Approved by Ann Oncall (${ann.email}). The agent can go ahead with exactly this action.`, { timeout: 10_000 });
  await expect(bob.page.getByRole('button', { name: 'Approve with passkey' })).toHaveCount(0);
  await bob.page.screenshot({ path: `screenshots/group-decided-${testInfo.project.name}.png`, fullPage: true });
  const run = await agent;
  expect(run.code, agent.output()).toBe(0);
  // Bob's inbox no longer asks him.
  await bob.page.goto('/inbox');
  await hydrated(bob.page);
  await expect(bob.page.getByRole('list', { name: 'Pending requests' })).toHaveCount(0);
});

test('while Jane is away her delegate decides her request, on her behalf', async ({ page }, testInfo) => {
  const jane = `jane-${Date.now()}@example.com`;
  countersign('approver', 'add', '--email', jane, '--name', 'Jane Away');
  const dan = { page, email: await enrolledApprover(page, 'Dan Delegate') };
  const until = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
  countersign('approver', 'delegate', '--email', jane, '--to', dan.email, '--until', until);
  // A running server reads delegations set on the command line within a second (the console's
  // apply at once); nothing on a page shows that moment, so the test gives it that second.
  await dan.page.waitForTimeout(1_500);

  const agent = agentRequest(newClient(), jane, 'Send', 'the quarterly report to the auditors',
    'The auditors receive it.');
  await open(dan.page, /Send/);
  await expect(dan.page.locator('p.parties')).toHaveText(
    `You decide this on behalf of Jane Away (${jane}), who handed their requests to you for now.`);
  await dan.page.screenshot({ path: `screenshots/delegate-${testInfo.project.name}.png`, fullPage: true });
  await dan.page.getByRole('button', { name: 'Approve with passkey' }).click();
  await expect(dan.page.getByRole('status')).toHaveText(
    'Approved by you on behalf of Jane Away. The agent can go ahead with exactly this action.');
  const run = await agent;
  expect(run.code, agent.output()).toBe(0);
  const audit = JSON.parse(countersign('audit', 'verify', '--json'));
  expect(audit.findings).toEqual([]);
});
