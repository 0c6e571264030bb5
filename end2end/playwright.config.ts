// Browser tests against the real server binary, in Debian's Chromium (Playwright's own browser downloads
// are not used). Each run starts the server on a fresh SQLite database under ../target/e2e.
import { defineConfig } from '@playwright/test';

const port = Number(process.env.E2E_PORT ?? 3100);
const bin = process.env.COUNTERSIGN_BIN ?? '../target/debug/countersign';

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://localhost:${port}`,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    },
  },
  projects: [
    { name: 'phone', use: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true } },
    { name: 'desktop', use: { viewport: { width: 1280, height: 800 } } },
  ],
  webServer: {
    command: `rm -rf ../target/e2e && mkdir -p ../target/e2e && exec ${bin} serve`,
    url: `http://127.0.0.1:${port}/.well-known/openid-configuration`,
    reuseExistingServer: false,
    timeout: 60_000,
    env: {
      DATABASE_URL: 'sqlite://../target/e2e/countersign.db',
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: '../target/site',
      COUNTERSIGN_PUBLIC_URL: `http://localhost:${port}`,
      RUST_LOG: 'warn',
      // Agents in these tests poll every second instead of every five.
      COUNTERSIGN_POLL_INTERVAL: '1',
    },
  },
});
