// Approvers enroll and sign in with passkeys (WebAuthn), in Chromium with a virtual authenticator.
import { test, expect, refusalBy } from './fixtures';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { Page } from '@playwright/test';
import { addAuthenticator, countersign, enrolledApprover, hydrated, invite, unique } from './helpers';

test('invite, enroll, sign out, sign in, reach the inbox', async ({ page }, testInfo) => {
  await addAuthenticator(page);
  const email = unique('alice');
  const link = invite(email, 'Alice Example');

  await page.goto(link);
  await expect(page.getByText('Alice Example')).toBeVisible();
  await expect(page.getByText(email)).toBeVisible();
  await hydrated(page);
  await page.screenshot({ path: `screenshots/enroll-${testInfo.project.name}.png`, fullPage: true });
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.getByRole('heading', { name: 'Inbox' })).toBeVisible();
  await expect(page.getByText('Signed in as Alice Example')).toBeVisible();

  // The link is single-use.
  await page.goto(link);
  await expect(page.getByRole('alert')).toContainText('already been used');

  await page.goto('/account');
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page).toHaveURL(/\/sign-in$/);
  await page.goto('/inbox');
  await expect(page).toHaveURL(/\/sign-in$/);

  await hydrated(page);
  await page.screenshot({ path: `screenshots/sign-in-${testInfo.project.name}.png`, fullPage: true });
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.getByText('Signed in as Alice Example')).toBeVisible();
  // The signed-out ceremonies' sealed state was the browser's to keep, and is gone once used.
  const cookies = (await page.context().cookies()).map((c) => c.name);
  expect(cookies).toContain('countersign_session');
  expect(cookies).not.toContain('countersign_sign_in');
  expect(cookies).not.toContain('countersign_enrollment');
});

test('signing in brings the person back to the page they asked for, and only on this site', async ({ page }) => {
  await enrolledApprover(page, 'Ria Return');
  await signOut(page);
  await page.goto('/account');
  await expect(page).toHaveURL(/\/sign-in\?next=\/account$/);
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByRole('heading', { name: 'Account' })).toBeVisible();

  // A way back to another site is ignored: the person lands in their inbox.
  await signOut(page);
  await page.goto('/sign-in?next=//evil.example/inbox');
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(page).toHaveURL(/localhost:\d+\/inbox$/);
});

async function signOut(page: Page) {
  await page.goto('/account');
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page).toHaveURL(/\/sign-in$/);
}

test('a second passkey is added only when the first confirms it, can be named and removed, but never the last; removing one ends its sessions', async ({ page, newContext, allowConsoleError }) => {
  allowConsoleError(refusalBy('remove_passkey', 409));
  const first = await addAuthenticator(page);
  await page.goto(invite(unique('bea'), 'Bea Example'));
  await hydrated(page);
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await expect(page).toHaveURL(/\/inbox$/);

  await page.goto('/account');
  await hydrated(page);
  await expect(page.getByRole('button', { name: 'Remove' })).toBeDisabled();
  await expect(page.getByRole('listitem')).toContainText('with an enrollment link');
  // A second device (the first authenticator already holds a passkey for this account, so it would
  // refuse to make another). The first one's passkey is kept, to confirm the new one with.
  const { credentials: [laptopKey] } = await first.cdp.send('WebAuthn.getCredentials', { authenticatorId: first.id });
  await first.cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: first.id });
  const phone = await addAuthenticator(page);
  await page.getByLabel('Name for the new passkey').fill('Phone');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  // Issue 22: made, but not added. A session alone never adds a passkey: one the account already
  // has must confirm it, and cancelling adds nothing.
  await expect(page.getByText('Confirm the new passkey')).toBeVisible();
  await expect(page.getByRole('listitem')).toHaveCount(1);
  await page.getByRole('button', { name: 'Cancel' }).click();
  // (The phone forgets the passkey it made, as a person would delete it.)
  await phone.cdp.send('WebAuthn.clearCredentials', { authenticatorId: phone.id });
  await page.reload();
  await hydrated(page);
  await expect(page.getByRole('listitem')).toHaveCount(1);

  await page.getByLabel('Name for the new passkey').fill('Phone');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(page.getByText('Confirm the new passkey')).toBeVisible();
  // The first passkey is at hand again (here on a security key), and it alone answers: it confirms
  // the new one.
  const laptopAgain = await addAuthenticator(page, 'usb');
  await laptopAgain.cdp.send('WebAuthn.addCredential', { authenticatorId: laptopAgain.id, credential: laptopKey });
  await phone.cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId: phone.id, enabled: false });
  await page.getByRole('button', { name: 'Confirm with an existing passkey' }).click();
  await expect(page.getByRole('listitem')).toHaveCount(2);
  await expect(page.getByLabel('Passkey name').nth(1)).toHaveValue('Phone');
  await expect(page.getByRole('listitem').nth(1)).toContainText('confirmed with your passkey');
  await laptopAgain.cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: laptopAgain.id });
  await phone.cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId: phone.id, enabled: true });

  await page.getByLabel('Passkey name').nth(0).fill('Laptop');
  await page.getByRole('button', { name: 'Save name' }).nth(0).click();
  await page.reload();
  await hydrated(page);
  await expect(page.getByLabel('Passkey name').nth(0)).toHaveValue('Laptop');

  // This session was made with "Laptop": removing it here would end the session mid-page.
  await page.getByRole('button', { name: 'Remove' }).nth(0).click();
  await expect(page.getByRole('alert')).toContainText('You signed in with this passkey');
  await expect(page.getByRole('listitem')).toHaveCount(2);

  // The same session, kept in another browser; this one signs in afresh with "Phone".
  const laptop = await newContext({ storageState: await page.context().storageState() });
  const elsewhere = await laptop.newPage();
  await elsewhere.goto('/account');
  await expect(elsewhere.getByRole('heading', { name: 'Account' })).toBeVisible();
  await page.context().clearCookies();
  await page.goto('/sign-in');
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await page.goto('/account');
  await hydrated(page);
  await page.getByRole('button', { name: 'Remove' }).nth(0).click();
  await expect(page.getByRole('listitem')).toHaveCount(1);
  await expect(page.getByLabel('Passkey name')).toHaveValue('Phone');
  await expect(page.getByRole('button', { name: 'Remove' })).toBeDisabled();

  // The session "Laptop" made is over with it.
  await elsewhere.goto('/account');
  await expect(elsewhere).toHaveURL(/\/sign-in\?next=\/account$/);
});

test('expired and unknown invitations are explained', async ({ page }) => {
  await page.goto(invite(unique('late'), 'Late Example', '--valid-minutes', '0'));
  await expect(page.getByRole('alert')).toContainText('expired');
  await page.goto('/enroll/not-a-real-token');
  await expect(page.getByRole('alert')).toContainText('not valid');
});

test('a passkey this server never registered is refused', async ({ page, allowConsoleError }) => {
  allowConsoleError(refusalBy('finish_sign_in', 401));
  const { cdp, id } = await addAuthenticator(page);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await cdp.send('WebAuthn.addCredential', {
    authenticatorId: id,
    credential: {
      credentialId: randomBytes(16).toString('base64'),
      isResidentCredential: true,
      rpId: 'localhost',
      privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
      userHandle: randomBytes(16).toString('base64'),
      signCount: 0,
    },
  });
  await page.goto('/sign-in');
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(page.getByRole('alert')).toContainText('not registered');
  await expect(page).toHaveURL(/\/sign-in$/);
});

test('a session cookie is not accepted after sign-out', async ({ page, newContext }) => {
  await addAuthenticator(page);
  await page.goto(invite(unique('cai'), 'Cai Example'));
  await hydrated(page);
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'countersign_session');
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe('Strict');

  await page.goto('/account');
  await hydrated(page);
  // The page has asked for its device list (signing out first would have it answered 401).
  await expect(page.getByText('No device receives notifications yet.')).toBeVisible();
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page).toHaveURL(/\/sign-in$/);

  const replay = await newContext();
  await replay.addCookies(cookies);
  const stolen = await replay.newPage();
  await stolen.goto('/inbox');
  await expect(stolen).toHaveURL(/\/sign-in$/);
  await replay.close();
});

test('state-changing requests from another site are refused', async ({ request }) => {
  const response = await request.post('/api/sign_out', {
    headers: { Origin: 'https://evil.example', 'Content-Type': 'application/json' },
    data: { everywhere: true },
  });
  expect(response.status()).toBe(403);
});

// Issue 22: an invitation enrolls a person's first passkey, never another one, or whoever opened the
// link would sign as that person.
test('an invitation for someone who has a passkey is refused; a second link stops working once the first enrolls', async ({ page, newContext, baseURL }) => {
  const email = unique('pia');
  countersign('approver', 'add', '--email', email, '--name', 'Pia Example');
  // Added without a passkey: two links may be made, and the first one enrolls.
  const first = invite(email, 'Pia Example');
  const second = invite(email, 'Pia Example');
  await addAuthenticator(page);
  await page.goto(first);
  await hydrated(page);
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await expect(page).toHaveURL(/\/inbox$/);

  // The other link, opened elsewhere, no longer enrolls anyone into Pia's account.
  const theirs = await newContext({ baseURL });
  const elsewhere = await theirs.newPage();
  await elsewhere.goto(second);
  await expect(elsewhere.getByRole('alert')).toContainText('already has a passkey');
  await expect(elsewhere.getByRole('button', { name: 'Create passkey' })).toHaveCount(0);

  // And the command line makes no new one.
  let refusal = '';
  try {
    countersign('approver', 'invite', '--email', email.toUpperCase(), '--name', 'Pia Example');
  } catch (e) {
    refusal = String((e as { stderr?: string }).stderr);
  }
  expect(refusal).toContain('already has a passkey');
});
