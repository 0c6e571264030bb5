// A first start on an empty database prints a one-time link that enrolls the first admin.
import { test, expect } from './fixtures';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addAuthenticator, bin, hydrated } from './helpers';

test('the first-admin link printed at first start enrolls an admin', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name === 'postgres', 'this test starts its own SQLite server');
  const port = testInfo.project.name === 'phone' ? 3102 : 3103;
  const dir = mkdtempSync(join(tmpdir(), 'countersign-first-'));
  const server = spawn(bin, ['serve'], {
    env: {
      ...process.env, DATABASE_URL: `sqlite://${dir}/c.db`, LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: '../target/site', COUNTERSIGN_PUBLIC_URL: `http://localhost:${port}`, RUST_LOG: 'warn',
    },
  });
  try {
    const link = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (d) => {
        out += d;
        const found = out.match(/http:\/\/localhost:\d+\/enroll\/\S+/);
        if (found) resolve(found[0]);
      });
      server.on('exit', () => reject(new Error(`server exited: ${out}`)));
      setTimeout(() => reject(new Error(`no link printed: ${out}`)), 20_000);
    });
    await addAuthenticator(page);
    await page.goto(link);
    await expect(page.getByText('sets up the first admin')).toBeVisible();
    await hydrated(page);
    await page.getByLabel('Your name').fill('Ada Admin');
    await page.getByLabel('Your email').fill('ada@example.com');
    await page.getByRole('button', { name: 'Create passkey' }).click();
    await expect(page).toHaveURL(/\/inbox$/);
    await expect(page.getByText('Signed in as Ada Admin')).toBeVisible();
    await page.goto(`http://localhost:${port}/account`);
    await expect(page.getByText('ada@example.com · admin')).toBeVisible();
    // The link is spent.
    await page.goto(link);
    await expect(page.getByRole('alert')).toContainText('already been used');
  } finally {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
