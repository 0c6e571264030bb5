// What `make run` serves a phone: the release bundle under content-hashed names, precompressed with
// brotli and gzip, cached for a year; pages that show a person's data stored nowhere; protected pages a
// real 302 to the sign-in page.
import { test, expect } from './fixtures';
import { enrolledApprover } from './helpers';
import { request as httpRequest } from 'node:http';

/** One GET straight over HTTP, so the bytes counted are the bytes sent (no client decompression). */
function rawGet(url: string, headers: Record<string, string>):
  Promise<{ status: number; headers: Record<string, string | string[] | undefined>; bytes: number }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { headers }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => { bytes += chunk.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
    }).on('error', reject).end();
  });
}

/** The budget of scripts/size-report.sh and BENCHMARKS.md: 360 kB of gzip for the wasm. */
const WASM_GZIP_BUDGET = 360_000;

test('the bundle is served precompressed under hashed names and cached for a year', async ({ request, baseURL }) => {
  const page = await request.get('/');
  expect(page.headers()['cache-control']).toBe('no-store');
  const html = await page.text();
  const named = (ext: string) => html.match(new RegExp(`/pkg/countersign\\.[0-9a-f]{16}\\.${ext}`))?.[0];
  const [wasm, js, css] = [named('wasm'), named('js'), named('css')];
  expect(wasm && js && css, html).toBeTruthy();

  for (const path of [wasm!, js!, css!]) {
    const plain = await rawGet(`${baseURL}${path}`, { 'Accept-Encoding': 'identity' });
    const gzip = await rawGet(`${baseURL}${path}`, { 'Accept-Encoding': 'gzip' });
    const brotli = await rawGet(`${baseURL}${path}`, { 'Accept-Encoding': 'gzip, deflate, br' });
    for (const r of [plain, gzip, brotli]) {
      expect(r.status).toBe(200);
      expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(r.headers['vary']).toBe('accept-encoding');
    }
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(brotli.headers['content-encoding']).toBe('br');
    expect(gzip.bytes).toBeLessThan(plain.bytes);
    expect(brotli.bytes).toBeLessThan(gzip.bytes);
    if (path === wasm) {
      expect(plain.headers['content-type']).toBe('application/wasm');
      expect(gzip.bytes).toBeLessThanOrEqual(WASM_GZIP_BUDGET);
    }
  }
});

test('files under stable names are revalidated, and unknown files are a 404 page stored nowhere', async ({ request }) => {
  const worker = await request.get('/sw.js');
  expect(worker.status()).toBe(200);
  expect(worker.headers()['cache-control']).toBe('no-cache');
  expect(worker.headers()['last-modified']).toBeTruthy();
  // A name from another build is a 404 nobody keeps: it may exist after the next deploy.
  const missing = await request.get('/pkg/countersign.0000000000000000.wasm');
  expect(missing.status()).toBe(404);
  expect(missing.headers()['cache-control']).toBe('no-store');
  const unknown = await request.get('/no/such/file.txt');
  expect(unknown.status()).toBe(404);
  expect(unknown.headers()['cache-control']).toBe('no-store');
});

test('a protected page without a session is a 302 to sign-in with the way back', async ({ request }) => {
  for (const accept of ['text/html', '*/*']) {
    const inbox = await request.get('/inbox', { maxRedirects: 0, headers: { Accept: accept } });
    expect(inbox.status()).toBe(302);
    expect(inbox.headers()['location']).toBe('/sign-in');
    const one = await request.get('/requests/r-1?from=push', { maxRedirects: 0, headers: { Accept: accept } });
    expect(one.status()).toBe(302);
    expect(one.headers()['location']).toBe('/sign-in?next=/requests/r-1%3Ffrom%3Dpush');
    expect(one.headers()['cache-control']).toBe('no-store');
  }
});

test('server-function answers about the person are stored nowhere', async ({ page }) => {
  const answers: { url: string; cacheControl: string | undefined }[] = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/')) answers.push({ url: r.url(), cacheControl: r.headers()['cache-control'] });
  });
  await enrolledApprover(page, 'Nora Nostore');
  await page.goto('/account');
  await expect(page.getByRole('heading', { name: 'Account' })).toBeVisible();
  expect(answers.length).toBeGreaterThan(0);
  for (const answer of answers) expect(answer.cacheControl, answer.url).toBe('no-store');
});
