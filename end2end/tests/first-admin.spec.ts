// A first start on an empty database prints a one-time link that enrolls the first admin.
import { test, expect } from './fixtures';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
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

    // What the first start left beside the database: the key-encryption key, readable by its owner
    // only; and, once stopped, a signed checkpoint of the evidence chains (the enrollment added a
    // key registry entry).
    expect(statSync(join(dir, 'countersign.key')).mode & 0o777).toBe(0o600);
    // Away from the server first: a late fetch of the page's icon would fail once it stops.
    await page.goto('about:blank');
    await stop(server);
    const checkpoint = readFileSync(join(dir, 'checkpoints', 'latest.jws'), 'utf8');
    const [header, claims] = checkpoint.split('.').slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header.typ).toBe('countersign-checkpoint+jwt');
    expect(claims.key_registry.seq).toBe(1);
    expect(claims.decisions.seq).toBe(0);
  } finally {
    await stop(server);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Stops the server (SIGTERM, a graceful shutdown) and waits until it has exited. */
async function stop(server: ReturnType<typeof spawn>): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  await exited;
}
