// What the MCP gate adds to an allowed call: the same upstream (the reference filesystem server) reached
// directly and through `countersign gate` (the release binary), both over stdio from the official MCP
// TypeScript SDK, on one machine. CALLS (2000) sequential `read_text_file` calls each way, after WARMUP
// (200), alternating in blocks so drift hits both alike; prints p50/p95/p99 of each and the difference.
// Usage (after make build; make bench runs it): node bench/gate-overhead.mjs
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { bin, ready, root } from './common.mjs';

const calls = Number(process.env.CALLS ?? 2000);
const warmup = Number(process.env.WARMUP ?? 200);
const require = createRequire(join(root, 'end2end', 'package.json'));
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const filesystemServer = require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js');

const port = 3962;
const origin = `http://localhost:${port}`;
const work = mkdtempSync(join(tmpdir(), 'countersign-gate-overhead-'));
const env = {
  ...process.env, RUST_LOG: 'warn', DATABASE_URL: `sqlite://${work}/countersign.db`,
  LEPTOS_SITE_ADDR: `127.0.0.1:${port}`, LEPTOS_SITE_ROOT: join(root, 'target/site'), COUNTERSIGN_PUBLIC_URL: origin,
  COUNTERSIGN_KEY_FILE: join(work, 'countersign.key'),
};
const cli = (...args) => execFileSync(bin, args, { env, encoding: 'utf8' }).trim();

const server = spawn(bin, ['serve'], { env, stdio: 'ignore' });
try {
  await ready(origin);
  const { client_id, client_secret } = JSON.parse(cli('client', 'create', '--name', 'Gate bench', '--delivery', 'poll', '--json'));
  const dir = join(work, 'files');
  execFileSync('mkdir', ['-p', dir]);
  const file = join(dir, 'read-me.txt');
  writeFileSync(file, 'a line of text\n'.repeat(20));
  const policy = join(work, 'gate.toml');
  writeFileSync(policy, 'approver = "nobody@example.com"\n[tools.write_file]\ndecision = "deny"\n'
    + '[tools.edit_file]\ndecision = "deny"\n[tools.move_file]\ndecision = "deny"\n[tools.create_directory]\ndecision = "deny"\n');

  const connect = async (command, args) => {
    const client = new Client({ name: 'bench', version: '1.0.0' });
    await client.connect(new StdioClientTransport({
      command, args, stderr: 'ignore',
      env: { PATH: process.env.PATH ?? '', COUNTERSIGN_CLIENT_SECRET: client_secret, RUST_LOG: 'warn' },
    }));
    return client;
  };
  const direct = await connect(process.execPath, [filesystemServer, dir]);
  const gated = await connect(bin, ['gate', '--policy', policy, '--issuer', origin, '--client-id', client_id,
    '--', process.execPath, filesystemServer, dir]);

  const call = { name: 'read_text_file', arguments: { path: file } };
  const timings = { direct: [], gated: [] };
  const run = async (client, into, n) => {
    for (let i = 0; i < n; i++) {
      const start = process.hrtime.bigint();
      const result = await client.callTool(call);
      const took = Number(process.hrtime.bigint() - start) / 1e6;
      if (result.isError) throw new Error(JSON.stringify(result));
      into?.push(took);
    }
  };
  await run(direct, null, warmup);
  await run(gated, null, warmup);
  const block = 100;
  for (let done = 0; done < calls; done += block) {
    await run(direct, timings.direct, block);
    await run(gated, timings.gated, block);
  }
  const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
  const row = (name, xs) => `${name.padEnd(8)} p50 ${pct(xs, 0.5).toFixed(3)} ms  p95 ${pct(xs, 0.95).toFixed(3)} ms  p99 ${pct(xs, 0.99).toFixed(3)} ms`;
  console.log(`gate overhead on allowed calls (read_text_file, ${calls} calls each, stdio both ways)`);
  console.log(row('direct', timings.direct));
  console.log(row('gated', timings.gated));
  console.log(`overhead p50 ${(pct(timings.gated, 0.5) - pct(timings.direct, 0.5)).toFixed(3)} ms`
    + `  p95 ${(pct(timings.gated, 0.95) - pct(timings.direct, 0.95)).toFixed(3)} ms`);
  await direct.close();
  await gated.close();
} finally {
  server.kill();
}
