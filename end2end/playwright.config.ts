// Browser tests against the real server binary, in Debian's Chromium (Playwright's own browser downloads
// are not used). Two servers run: one on a fresh SQLite database, one on a fresh PostgreSQL database,
// so the whole flow is tested on both storage backends.
import { defineConfig } from '@playwright/test';

// The release binary and bundle that `make run` serves (built by `make build`).
const bin = process.env.COUNTERSIGN_BIN ?? '../target/release/countersign';
const pgAdmin = process.env.COUNTERSIGN_TEST_POSTGRES ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';
const pgE2e = pgAdmin.replace(/\/[^/]*$/, '/countersign_e2e');

export const backends = {
  sqlite: {
    port: 3100, databaseUrl: 'sqlite://../target/e2e/countersign.db',
    keyFile: '../target/e2e/sqlite.key', checkpointDir: '../target/e2e/sqlite-checkpoints',
  },
  postgres: {
    port: 3101, databaseUrl: pgE2e,
    keyFile: '../target/e2e/postgres.key', checkpointDir: '../target/e2e/postgres-checkpoints',
  },
};

function server(backend: keyof typeof backends, prepare: string) {
  const { port, databaseUrl, keyFile, checkpointDir } = backends[backend];
  return {
    command: `${prepare} && exec ${bin} serve`,
    url: `http://127.0.0.1:${port}/.well-known/openid-configuration`,
    reuseExistingServer: false,
    timeout: 60_000,
    env: {
      DATABASE_URL: databaseUrl,
      COUNTERSIGN_KEY_FILE: keyFile,
      COUNTERSIGN_CHECKPOINT_DIR: checkpointDir,
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: '../target/site',
      COUNTERSIGN_PUBLIC_URL: `http://localhost:${port}`,
      RUST_LOG: 'warn',
      // Agents in these tests poll every second instead of every five.
      COUNTERSIGN_POLL_INTERVAL: '1',
      // The push tests' receiver listens on loopback (see tests/notifications.spec.ts).
      COUNTERSIGN_PUSH_SERVICES: '127.0.0.1',
      // So do the ping-mode agents' notification endpoints (see tests/oauth-client.spec.ts).
      COUNTERSIGN_ALLOW_LOOPBACK_NOTIFY: '1',
      // Every browser here signs in from 127.0.0.1, dozens of times a minute: the limits per address
      // are tested on a server of their own (tests/limits.spec.ts) and in the integration tests.
      COUNTERSIGN_CEREMONIES_PER_MINUTE: '0',
      COUNTERSIGN_FAILURES_PER_MINUTE: '0',
    },
  };
}

const chromium = {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
};
const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
const desktop = { viewport: { width: 1280, height: 800 } };

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: { launchOptions: chromium },
  projects: [
    { name: 'phone', metadata: backends.sqlite, use: { ...phone, baseURL: 'http://localhost:3100' } },
    { name: 'desktop', metadata: backends.sqlite, use: { ...desktop, baseURL: 'http://localhost:3100' } },
    // The same flows on PostgreSQL (desktop size; the layout does not depend on the database).
    { name: 'postgres', metadata: backends.postgres, use: { ...desktop, baseURL: 'http://localhost:3101' } },
  ],
  webServer: [
    server('sqlite', 'rm -rf ../target/e2e && mkdir -p ../target/e2e'),
    server('postgres',
      `rm -rf ${backends.postgres.checkpointDir} && psql "${pgAdmin}" -q -c 'DROP DATABASE IF EXISTS countersign_e2e WITH (FORCE)' -c 'CREATE DATABASE countersign_e2e'`),
  ],
});
