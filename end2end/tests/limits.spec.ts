// The limits per client address, on the release binary as it serves (it reads the peer's address
// from the connection): signed-out sign-in calls, and refused backchannel requests, answered 429 with
// Retry-After once an address has used its share. The shared test servers turn these limits off
// (every browser here comes from 127.0.0.1), so this test starts a server of its own.
import { test, expect } from './fixtures';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin } from './helpers';

test('an address that floods sign-in or fails at /bc-authorize is answered 429 with Retry-After', async ({}, testInfo) => {
  test.skip(testInfo.project.name !== 'desktop', 'one server of its own is enough');
  const port = 3104;
  const origin = `http://localhost:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'countersign-limits-'));
  const server = spawn(bin, ['serve'], {
    env: {
      ...process.env, DATABASE_URL: `sqlite://${dir}/c.db`, LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: '../target/site', COUNTERSIGN_PUBLIC_URL: origin, RUST_LOG: 'warn',
      COUNTERSIGN_CEREMONIES_PER_MINUTE: '5', COUNTERSIGN_FAILURES_PER_MINUTE: '3',
    },
  });
  try {
    await expect.poll(async () => {
      try {
        return (await fetch(`${origin}/.well-known/openid-configuration`)).status;
      } catch {
        return 0;
      }
    }, { timeout: 20_000 }).toBe(200);

    const startSignIn = () => fetch(`${origin}/api/start_sign_in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin },
      body: JSON.stringify({ autofill: false }),
    });
    for (let i = 0; i < 5; i++) expect((await startSignIn()).status).toBe(200);
    const refused = await startSignIn();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // A client that does not exist: every request is refused, and the fourth failure closes the door.
    const badAgent = () => fetch(`${origin}/bc-authorize`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from('nobody:nothing').toString('base64')}`,
      },
      body: 'scope=openid&login_hint=someone%40example.com',
    });
    for (let i = 0; i < 4; i++) expect((await badAgent()).status).toBe(401);
    const limited = await badAgent();
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: 'temporarily_unavailable' });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  } finally {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
