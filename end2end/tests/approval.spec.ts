// The approval itself: an agent asks, the approver sees it live, reads the statement, and decides with a
// passkey; the agent gets tokens carrying exactly that action, or access_denied.
import { test, expect, refusalBy } from './fixtures';
import { addAuthenticator, agentRequest, countersign, enrolledApprover, hydrated, invite, newClient, unique } from './helpers';

test('an agent asks, the approver approves with a passkey, the agent gets its tokens', async ({ page }, testInfo) => {
  const email = await enrolledApprover(page, 'Jane Approver');
  await hydrated(page);
  await expect(page.getByText('No requests are waiting for your decision.')).toBeVisible();
  const client = newClient();
  const agent = agentRequest(client, email, 'Refund $120.00', 'jane@example.com for order #1234',
    'The money leaves the company account.', '--binding-message', 'ORDER-1234', '--reversible', 'false',
    '--amount', '120.00', '--currency', 'USD');

  // It appears live, without a reload.
  const line = page.getByRole('link', { name: /Refund \$120\.00/ });
  await expect(line, agent.output()).toBeVisible({ timeout: 10_000 });
  await page.screenshot({ path: `screenshots/inbox-${testInfo.project.name}.png`, fullPage: true });
  await line.click();
  await expect(page).toHaveURL(/\/requests\//);
  const statement = page.locator('.statement-box');
  await expect(statement).toContainText('Refund $120.00');
  await expect(statement).toContainText('jane@example.com for order #1234');
  await expect(statement).toContainText('This cannot be undone: The money leaves the company account.');
  await expect(page.locator('section.request').getByText('ORDER-1234')).toBeVisible();
  await expect(page.locator('section.request').getByRole('timer')).toHaveText(/^\d+:\d\d$/);
  await hydrated(page);
  const approve = page.getByRole('button', { name: 'Approve with passkey' });
  const deny = page.getByRole('button', { name: 'Deny' });
  await expect(approve).toBeInViewport();
  await expect(deny).toBeInViewport();
  await expect(statement).toBeInViewport();
  await page.screenshot({ path: `screenshots/request-${testInfo.project.name}.png` });
  // Before anyone decides, the agent's poll hears it must wait (CIBA §11); without this wait a fast
  // approval could land before the agent's first poll.
  await expect.poll(agent.output, { timeout: 15_000 }).toContain('authorization_pending');

  await approve.click();
  await expect(page.getByRole('status')).toContainText('You approved this request');
  const run = await agent;
  expect(run.code).toBe(0);
  const tokens = JSON.parse(run.stdout);
  expect(tokens.authorization_details).toEqual([{
    type: 'agent_action', action: 'Refund $120.00', target: 'jane@example.com for order #1234',
    consequence: 'The money leaves the company account.', amount: '120.00', currency: 'USD', reversible: false,
  }]);
  expect(run.stderr).toContain('authorization_pending');
  // Every decision on this server re-verifies offline, down to the passkey's own signature.
  const audit = JSON.parse(countersign('audit', 'verify', '--json'));
  expect(audit.findings).toEqual([]);
  expect(audit.records).toBeGreaterThan(0);
  expect(audit.signatures_verified).toBe(audit.records);
});

test('a denial reaches the agent as access_denied', async ({ page }) => {
  const email = await enrolledApprover(page, 'Dana Denier');
  const agent = agentRequest(newClient(), email, 'Delete', 'production database "orders"', 'All order history is lost.');
  await page.getByRole('link', { name: /Delete/ }).click();
  await hydrated(page);
  await page.getByLabel('Reason for denying (optional)').fill('Not during business hours');
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page.getByRole('status')).toContainText('You denied this request');
  const run = await agent;
  expect(run.code).toBe(2);
  expect(JSON.parse(run.stdout).error).toBe('access_denied');
});

test('hostile characters in the target are shown, and another approver cannot see the request', async ({ page, newContext }) => {
  const email = await enrolledApprover(page, 'Hal Careful');
  const agent = agentRequest(newClient(), email, 'Transfer', 'acct\u202E4321-evil\u200B pаypal', 'Money moves.',
    '--requested-expiry', '60');
  await page.getByRole('link', { name: /Transfer/ }).click();
  const pane = page.locator('section.request');
  await expect(pane.locator('mark.invisible-char').first()).toHaveText('[U+202E]');
  await expect(pane.locator('mark.invisible-char').nth(1)).toHaveText('[U+200B]');
  await expect(pane.locator('mark.lookalike')).toHaveText('а');
  await expect(pane.getByText('Contains hidden or look-alike characters')).toBeVisible();
  const url = page.url();

  const other = await newContext();
  const otherPage = await other.newPage();
  await enrolledApprover(otherPage, 'Olga Other');
  await expect(otherPage.getByRole('link', { name: /Transfer/ })).toHaveCount(0);
  await otherPage.goto(url);
  await expect(otherPage.getByRole('alert')).toContainText('There is no such request for you.');
  await expect(otherPage.getByRole('button', { name: 'Approve with passkey' })).toHaveCount(0);
  await other.close();

  await hydrated(page);
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page.getByRole('status')).toContainText('You denied');
  await agent;
});

/** The characters of `el`'s text in the order the screen shows them: by line, then left to right. */
function laidOut(el: import('@playwright/test').Locator): Promise<string> {
  return el.evaluate((root) => {
    const seen: { c: string; x: number; y: number }[] = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent ?? '';
      for (let i = 0; i < text.length; i++) {
        if (text[i].trim() === '') continue;
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const box = range.getBoundingClientRect();
        seen.push({ c: text[i], x: box.left, y: box.top });
      }
    }
    seen.sort((a, b) => (Math.abs(a.y - b.y) > 4 ? a.y - b.y : a.x - b.x));
    return seen.map((s) => s.c).join('');
  });
}

test('one right-to-left letter cannot reorder the digits an approver checks', async ({ page }, testInfo) => {
  const email = await enrolledApprover(page, 'Rita Order');
  const target = 'IBAN DE89 \u05E9 3704 0044 0532 0130 00';
  const stored = target.replace(/ /g, '');
  const agent = agentRequest(newClient(), email, 'Transfer EUR 5,000', target, 'The money leaves the account.');

  const line = page.getByRole('link', { name: /Transfer/ });
  await expect(line, agent.output()).toBeVisible({ timeout: 10_000 });
  expect(await laidOut(line.locator('.safe-text').filter({ hasText: 'IBAN' }))).toBe(stored);

  await line.click();
  await hydrated(page);
  const shown = page.locator('.statement .target .safe-text');
  expect(await laidOut(shown)).toBe(stored);
  await expect(shown.locator('mark.rtl-char')).toHaveText('\u05E9');
  await expect(page.locator('section.request').getByText('Contains right-to-left letters (marked)')).toBeVisible();
  await page.screenshot({ path: `screenshots/request-rtl-${testInfo.project.name}.png` });
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page.getByRole('status')).toContainText('You denied');
  await agent;
});

test('look-alikes are marked: letters of other alphabets, stylised forms and combining marks', async ({ page }, testInfo) => {
  const email = await enrolledApprover(page, 'Lou Alike');
  // Fullwidth "pay", mathematical bold "paypal", a Cherokee A, a combining long solidus, a Cyrillic s.
  const target = '\uFF50\uFF41\uFF59 \u{1D429}\u{1D41A}\u{1D432}\u{1D429}\u{1D41A}\u{1D425} \u13AAcme no\u0338w ac\u0441ount';
  const agent = agentRequest(newClient(), email, 'Pay invoice', target, 'The money leaves the account.');
  const line = page.getByRole('link', { name: /Pay invoice/ });
  await expect(line, agent.output()).toBeVisible({ timeout: 10_000 });
  await line.click();
  await hydrated(page);
  const shown = page.locator('.statement .target .safe-text');
  const stylised = shown.locator('mark.lookalike[title^="Stylised character"]');
  await expect(stylised).toHaveCount(9);
  await expect(stylised.first()).toHaveText('[U+FF50]');
  await expect(shown.locator('mark.lookalike[title^="Letter from another alphabet"]')).toHaveText(['\u13AA', '\u0441']);
  await expect(shown.locator('mark.lookalike[title^="Combining mark"]')).toHaveText('[U+0338]');
  await expect(page.locator('section.request').getByText('Contains hidden or look-alike characters')).toBeVisible();
  await page.screenshot({ path: `screenshots/request-lookalikes-${testInfo.project.name}.png` });

  // The reason is signed with the decision: the record holds it, and the evidence of every decision
  // made on this server so far verifies.
  await page.getByLabel('Reason for denying (optional)').fill('Not our supplier');
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page.getByRole('status')).toContainText('You denied');
  expect((await agent).code).toBe(2);
  const report = JSON.parse(countersign('audit', 'verify', '--json'));
  expect(report.findings).toEqual([]);
  expect(report.signing_keys_checked).toBe(true);
});

test('nothing approved is hidden: runs of spaces are counted, and Approve waits until all is shown', async ({ page }) => {
  const email = await enrolledApprover(page, 'Pat Padding');
  const target = `order 1234${' '.repeat(150)}and close account 77`;
  const agent = agentRequest(newClient(), email, 'Refund $5.00', target, 'The money leaves the account.');
  const line = page.getByRole('link', { name: /Refund \$5\.00/ });
  await expect(line, agent.output()).toBeVisible({ timeout: 10_000 });
  await line.click();
  await hydrated(page);
  const approve = page.getByRole('button', { name: 'Approve with passkey' });
  const shown = page.locator('.statement .target');
  await expect(shown).not.toContainText('close account');
  await expect(approve).toBeDisabled();
  await expect(page.getByText('Part of this request is shortened above.')).toBeVisible();

  await shown.getByRole('button', { name: 'Show all' }).click();
  await expect(shown.locator('mark.spaces')).toHaveText('[150 spaces]');
  await expect(shown).toContainText('and close account 77');
  await expect(approve).toBeEnabled();
  await approve.click();
  await expect(page.getByRole('status')).toContainText('You approved');
  const run = await agent;
  expect(JSON.parse(run.stdout).authorization_details[0].target).toBe(target);
});

test('a request that expires while its page is open cannot be approved', async ({ page }) => {
  const email = await enrolledApprover(page, 'Eve Late');
  const agent = agentRequest(newClient(), email, 'Restart', 'web cluster', 'Sites go down for a minute.',
    '--requested-expiry', '4');
  await page.getByRole('link', { name: /Restart/ }).click();
  await hydrated(page);
  await expect(page.getByRole('button', { name: 'Approve with passkey' })).toBeVisible();
  await expect(page.getByRole('status')).toContainText('This request has expired', { timeout: 10_000 });
  await expect(page.getByRole('button', { name: 'Approve with passkey' })).toHaveCount(0);
  const run = await agent;
  expect(JSON.parse(run.stdout).error).toBe('expired_token');
});

test('two open tabs decide once', async ({ page }) => {
  const email = await enrolledApprover(page, 'Tia Tabs');
  const agent = agentRequest(newClient(), email, 'Rotate', 'API key "billing"', 'Old key stops working.');
  await page.getByRole('link', { name: /Rotate/ }).click();
  await hydrated(page);
  const second = await page.context().newPage();
  await second.goto(page.url());
  await hydrated(second);

  await page.getByRole('button', { name: 'Approve with passkey' }).click();
  await expect(page.getByRole('status')).toContainText('You approved');
  // The other tab hears of the decision and moves on by itself: nothing is left to decide there.
  await expect(second.getByRole('status')).toContainText('You approved this request', { timeout: 10_000 });
  await expect(second.getByRole('button', { name: 'Deny' })).toHaveCount(0);
  const run = await agent;
  expect(run.code).toBe(0);
  expect(JSON.parse(run.stdout).authorization_details[0].action).toBe('Rotate');
});

/** An approver whose policy asks for a user code (CIBA §7.1), enrolled in this page's browser. */
async function approverWithUserCode(page: import('@playwright/test').Page, name: string, code: string): Promise<string> {
  const email = unique(name.toLowerCase().split(' ')[0]);
  countersign('approver', 'add', '--email', email, '--name', name, '--user-code', code);
  await addAuthenticator(page);
  await page.goto(invite(email, name));
  await hydrated(page);
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await page.waitForURL(/\/inbox$/);
  return email;
}

test('an approver whose policy needs a user code enters it before the passkey prompt', async ({ page, allowConsoleError }, testInfo) => {
  allowConsoleError(refusalBy('start_decision', 422, 403)); // the missing and the wrong code
  const email = await approverWithUserCode(page, 'Uma Coded', '246810');
  const agent = agentRequest(newClient(), email, 'Send', 'the Q3 report to press@example.com', 'It becomes public.',
    '--user-code', '246810');
  await page.getByRole('link', { name: /Send/ }).click();
  await hydrated(page);
  const approve = page.getByRole('button', { name: 'Approve with passkey' });
  const code = page.getByLabel('Your user code (needed to approve)');
  await expect(code).toHaveAttribute('type', 'password');
  await expect(approve).toBeInViewport();
  await page.screenshot({ path: `screenshots/request-user-code-${testInfo.project.name}.png` });
  await approve.click();
  await expect(page.getByRole('alert')).toHaveText('Enter your user code to approve this request.');
  await code.fill('111111');
  await approve.click();
  await expect(page.getByRole('alert')).toHaveText('That user code is not correct. 4 tries left.');
  await code.fill('246810');
  await approve.click();
  await expect(page.getByRole('status')).toContainText('You approved this request');
  expect((await agent).code).toBe(0);
});

test('after five wrong user codes a request can only be denied', async ({ page, allowConsoleError }) => {
  allowConsoleError(refusalBy('start_decision', 403, 429)); // the wrong codes, then the right one too late
  const email = await approverWithUserCode(page, 'Lou Locked', '864213');
  const agent = agentRequest(newClient(), email, 'Wire', '$9,000 to an unknown account', 'The money is gone.',
    '--user-code', '864213');
  await page.getByRole('link', { name: /Wire/ }).click();
  await hydrated(page);
  const approve = page.getByRole('button', { name: 'Approve with passkey' });
  // The page's own call to the server function, to repeat it by hand below.
  const call = page.waitForRequest((r) => r.url().includes('start_decision'));
  for (const left of ['4 tries left', '3 tries left', '2 tries left', '1 try left']) {
    await page.getByLabel('Your user code (needed to approve)').fill('000000');
    await approve.click();
    await expect(page.getByRole('alert')).toContainText(left);
  }
  await page.getByLabel('Your user code (needed to approve)').fill('000000');
  await approve.click();
  await expect(page.getByRole('alert')).toHaveText('Too many wrong user codes were entered for this request. It can only be denied now.');
  await expect(approve).toBeDisabled();
  await expect(page.getByLabel('Your user code (needed to approve)')).toHaveCount(0);
  // The right code no longer helps: the server refuses it, whatever the page shows.
  const reference = new URL(page.url()).pathname.split('/').pop();
  const endpoint = (await call).url();
  const refused = await page.evaluate(async ([endpoint, id]) => {
    const res = await fetch(endpoint, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id, choice: { choice: 'approve' }, user_code: '864213' }),
    });
    return { status: res.status, text: await res.text() };
  }, [endpoint, reference]);
  expect(refused.status).toBe(429);
  expect(refused.text).toContain('Too many wrong user codes were entered for this request.');
  await page.reload();
  await hydrated(page);
  await expect(page.getByText('Too many wrong user codes were entered. This request can only be denied.')).toBeVisible();
  await expect(approve).toBeDisabled();
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page.getByRole('status')).toContainText('You denied this request');
  expect(JSON.parse((await agent).stdout).error).toBe('access_denied');
});

test('a refusal answers with its HTTP status, never a 500', async ({ page, playwright, baseURL, allowConsoleError }) => {
  allowConsoleError(refusalBy('start_decision', 409, 404));
  const email = await enrolledApprover(page, 'Rhea Refusals');
  const agent = agentRequest(newClient(), email, 'Delete', 'the staging database', 'All staging data is lost.');
  await page.getByRole('link', { name: /Delete/ }).click();
  await hydrated(page);
  const call = page.waitForRequest((r) => r.url().includes('start_decision'));
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page.getByRole('status')).toContainText('You denied this request');
  expect(JSON.parse((await agent).stdout).error).toBe('access_denied');
  const endpoint = (await call).url();
  const reference = new URL(page.url()).pathname.split('/').pop();
  const post = (body: object) => page.evaluate(async ([endpoint, body]) => {
    const res = await fetch(endpoint as string, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  }, [endpoint, body] as const);

  const decided = await post({ id: reference, choice: { choice: 'approve' }, user_code: null });
  expect(decided.status).toBe(409);
  expect(decided.text).toContain('This request has already been decided.');
  const missing = await post({ id: 'not-a-request', choice: { choice: 'approve' }, user_code: null });
  expect(missing.status).toBe(404);
  expect(missing.text).toContain('There is no such request for you.');

  // Nobody signed in: 401, and the page's sentence says what to do.
  const stranger = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { origin: new URL(baseURL!).origin } });
  const signedOut = await stranger.post(endpoint, { data: { id: reference, choice: { choice: 'approve' }, user_code: null } });
  expect(signedOut.status()).toBe(401);
  expect(await signedOut.text()).toContain('Your session has ended. Please sign in again.');
  await stranger.dispose();
});
