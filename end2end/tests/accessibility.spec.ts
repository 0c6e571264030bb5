// Accessibility: every page an approver uses is checked with axe-core against WCAG 2.1 A and AA
// (labels, names of buttons and links, contrast, landmarks, headings), at phone and desktop size.
import { test, expect } from './fixtures';
import type { Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { agentRequest, enrolledApprover, hydrated, invite, newClient, unique } from './helpers';

async function violations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return results.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

test('the sign-in, enrollment and home pages meet WCAG 2.1 AA', async ({ page }) => {
  for (const path of ['/', '/sign-in', invite(unique('axe'), 'Axe Person')]) {
    await page.goto(path);
    await hydrated(page);
    expect(await violations(page), path).toEqual([]);
  }
});

test('the inbox, a request and the account page meet WCAG 2.1 AA', async ({ page }) => {
  const email = await enrolledApprover(page, 'Ada Access');
  const agent = agentRequest(newClient(), email, 'Delete', 'the staging cluster "blue"', 'Its data is gone.',
    '--binding-message', 'BLUE-7');
  const line = page.getByRole('link', { name: /Delete/ });
  await expect(line, agent.output()).toBeVisible({ timeout: 10_000 });
  expect(await violations(page), 'inbox').toEqual([]);
  await line.click();
  await hydrated(page);
  await expect(page.locator('.statement-box')).toContainText('staging cluster');
  expect(await violations(page), 'request').toEqual([]);
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page.getByRole('status')).toContainText('You denied this request');
  expect(await violations(page), 'decided request').toEqual([]);
  await agent;
  await page.goto('/account');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Notifications' })).toBeVisible();
  expect(await violations(page), 'account').toEqual([]);
});
