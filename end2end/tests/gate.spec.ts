// The MCP gate, end to end with real parts from npm: the official MCP TypeScript SDK as the agent's
// client, `countersign gate` (the release binary) in front of the reference filesystem server, and the
// approver deciding on the real page. Reads pass; writes wait for a passkey approval of that exact call.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect } from './fixtures';
import { bin, countersign, enrolledApprover, hydrated } from './helpers';

const filesystemServer = require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js');

interface Gate { client: Client; dir: string; stderr: () => string; links: string[] }

/** A gate in front of a fresh directory, with the approver `email`; `policy` is added to the base. */
async function startGate(port: number, email: string, policy: string,
  listen?: { mode: 'ping' | 'push'; port: number }): Promise<Gate> {
  const dir = mkdtempSync(join(tmpdir(), 'gate-'));
  const delivery = listen ? [listen.mode, '--notify-url', `http://127.0.0.1:${listen.port}/${listen.mode}`] : ['poll'];
  const { client_id, client_secret } = JSON.parse(
    countersign('client', 'create', '--name', 'Filesystem gate', '--delivery', ...delivery, '--json'));
  const policyFile = join(dir, '..', `${dir.split('/').pop()}.toml`);
  writeFileSync(policyFile, `approver = "${email}"\n${policy}
[tools.write_file]
decision = "approve"
action = "Write the file {path}"
target = "{path}"
consequence = "Its contents become: {content}"
reversible = false

[tools.edit_file]
decision = "approve"
action = "Edit the file {path}"
target = "{path}"
consequence = "The edits under the exact call are made."

[tools.move_file]
decision = "deny"

[tools.create_directory]
decision = "allow"
`);
  const transport = new StdioClientTransport({
    command: bin,
    args: ['gate', '--policy', policyFile, '--issuer', `http://localhost:${port}`, '--client-id', client_id,
      ...(listen ? [`--${listen.mode}-listen`, `127.0.0.1:${listen.port}`] : []), '--', process.execPath, filesystemServer, dir],
    env: { PATH: process.env.PATH ?? '', COUNTERSIGN_CLIENT_SECRET: client_secret, RUST_LOG: 'info' },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d) => { stderr += d; });
  // A client that can show a link (URL-mode elicitation) is sent the approval page.
  const client = new Client({ name: 'test-agent', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
  const links: string[] = [];
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    if (request.params.mode === 'url') links.push(request.params.url);
    return { action: 'accept' };
  });
  await client.connect(transport);
  return { client, dir, stderr: () => stderr, links };
}

function text(result: { content?: unknown }): string {
  return (result.content as { type: string; text?: string }[]).map((c) => c.text ?? '').join('\n');
}

async function decide(page: Page, action: string, button: 'Approve with passkey' | 'Deny') {
  await page.goto('/inbox');
  await hydrated(page);
  await page.getByRole('list', { name: 'Pending requests' }).getByRole('link', { name: new RegExp(action) }).click();
  await hydrated(page);
  await page.getByRole('button', { name: button }).click();
  await expect(page.getByRole('status')).toContainText(button === 'Deny' ? 'You denied' : 'You approved');
}

test('reads pass; a write waits for approval of the exact call; a denied write is not made', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name === 'postgres', 'the gate does not depend on the storage');
  const port = (testInfo.project.metadata as { port: number }).port;
  const email = await enrolledApprover(page, 'Gail Gate');
  const gate = await startGate(port, email, 'hold_seconds = 40');
  try {
    const file = join(gate.dir, 'notes.txt');
    writeFileSync(file, 'before');
    // Denied tools are not offered; the rest are, unchanged.
    const tools = (await gate.client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('read_text_file');
    expect(tools).toContain('write_file');
    expect(tools).not.toContain('move_file');

    // A read passes without a prompt.
    const read = await gate.client.callTool({ name: 'read_text_file', arguments: { path: file } });
    expect(read.isError ?? false).toBe(false);
    expect(text(read)).toBe('before');
    await page.goto('/inbox');
    await expect(page.getByText('No requests are waiting for your decision.')).toBeVisible();

    // A write waits; the approver reads the statement and the exact call, and approves.
    const write = gate.client.callTool({ name: 'write_file', arguments: { path: file, content: 'approved text' } },
      undefined, { timeout: 60_000 });
    await page.goto('/inbox');
    await hydrated(page);
    await page.getByRole('link', { name: /Write the file/ }).click();
    await hydrated(page);
    const statement = page.locator('.statement-box');
    await expect(statement).toContainText(`Write the file ${file}`);
    await expect(statement).toContainText('This cannot be undone: Its contents become: approved text');
    const call = page.locator('details.exact-call');
    await expect(call.locator('summary')).toHaveText('The exact call: write_file');
    await expect(call.locator('li').first()).not.toBeVisible();
    await call.locator('summary').click();
    await expect(call.locator('li')).toHaveText(['content: "approved text"', `path: ${JSON.stringify(file)}`]);
    await page.screenshot({ path: `screenshots/gate-request-${testInfo.project.name}.png`, fullPage: true });
    expect(readFileSync(file, 'utf8'), 'nothing is written before the approval').toBe('before');
    await page.getByRole('button', { name: 'Approve with passkey' }).click();
    await expect(page.getByRole('status')).toContainText('You approved');
    const written = await write;
    expect(written.isError ?? false, text(written)).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('approved text');

    // A denied write returns a tool error the model can read, and the file stays as it was.
    const denied = gate.client.callTool({ name: 'write_file', arguments: { path: file, content: 'never' } },
      undefined, { timeout: 60_000 });
    await decide(page, 'Write the file', 'Deny');
    const refused = await denied;
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain(`${email} denied this call`);
    expect(readFileSync(file, 'utf8')).toBe('approved text');

    // A denied tool is refused by the gate itself.
    const moved = await gate.client.callTool({ name: 'move_file', arguments: { source: file, destination: `${file}.old` } });
    expect(moved.isError).toBe(true);
    expect(text(moved)).toContain('does not allow move_file');
    expect(readFileSync(file, 'utf8')).toBe('approved text');
    expect(gate.stderr()).toMatch(/gated call.*outcome="?approved/);
  } finally {
    await gate.client.close();
  }
});

test('a call held past the limit is pending; the identical call resumes it, a changed one never rides on it', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'desktop', 'one browser size is enough for the protocol');
  const port = (testInfo.project.metadata as { port: number }).port;
  const email = await enrolledApprover(page, 'Hank Hold');
  const gate = await startGate(port, email, 'hold_seconds = 2');
  try {
    const file = join(gate.dir, 'held.txt');
    writeFileSync(file, 'before');
    const call = { name: 'write_file', arguments: { path: file, content: 'held text' } };
    const first = await gate.client.callTool(call);
    expect(first.isError ?? false).toBe(false);
    expect(text(first)).toContain('Approval pending');
    expect(text(first)).toContain('Make exactly the same call again');
    expect(readFileSync(file, 'utf8')).toBe('before');
    // The client declared URL-mode elicitation, so it was sent the approval page.
    await expect.poll(() => gate.links.length).toBe(1);
    expect(gate.links[0]).toMatch(new RegExp(`^http://localhost:${port}/requests/[A-Za-z0-9_-]{34}$`));

    await page.goto(new URL(gate.links[0]).pathname);
    await hydrated(page);
    await expect(page.locator('.statement-box')).toContainText('Its contents become: held text');
    await page.getByRole('button', { name: 'Approve with passkey' }).click();
    await expect(page.getByRole('status')).toContainText('You approved');

    // Changed arguments do not ride on that approval: a new request, nothing written.
    const changed = await gate.client.callTool({ name: 'write_file', arguments: { path: file, content: 'swapped text' } });
    expect(text(changed)).toContain('Approval pending');
    expect(readFileSync(file, 'utf8')).toBe('before');

    // The identical call resumes the approved request: no second prompt.
    const resumed = await gate.client.callTool(call);
    expect(resumed.isError ?? false, text(resumed)).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('held text');
    await page.goto('/inbox');
    await hydrated(page);
    await expect(page.getByRole('link', { name: /Write the file/ })).toHaveCount(2);
    await expect(page.getByRole('list', { name: 'Pending requests' }).getByRole('link', { name: /Write the file/ })).toHaveCount(1);

    // The approval was used once: the same call again needs a new one.
    const again = await gate.client.callTool(call);
    expect(text(again)).toContain('Approval pending');
    await expect(page.getByRole('link', { name: /Write the file/ })).toHaveCount(3);
  } finally {
    await gate.client.close();
  }
});

test('two identical calls at once: the approval runs one of them, the other asks anew', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'desktop', 'one browser size is enough for the protocol');
  const port = (testInfo.project.metadata as { port: number }).port;
  const email = await enrolledApprover(page, 'Tess Twice');
  const gate = await startGate(port, email, 'hold_seconds = 6');
  try {
    const file = join(gate.dir, 'twice.txt');
    const call = { name: 'write_file', arguments: { path: file, content: 'once' } };
    const [first, second] = [gate.client.callTool(call), gate.client.callTool(call)];
    await decide(page, 'Write the file', 'Approve with passkey');
    const results = await Promise.all([first, second]);
    const texts = results.map(text);
    expect(texts.filter((t) => t.startsWith('Successfully wrote')), texts.join(' | ')).toHaveLength(1);
    expect(texts.filter((t) => t.startsWith('Approval pending')), texts.join(' | ')).toHaveLength(1);
    expect(readFileSync(file, 'utf8')).toBe('once');
    await page.goto('/inbox');
    await hydrated(page);
    // The approval covered one call: the second waited for the first, then asked for its own.
    await expect(page.getByRole('link', { name: /Write the file/ })).toHaveCount(2);
    await expect(page.getByRole('list', { name: 'Pending requests' }).getByRole('link', { name: /Write the file/ })).toHaveCount(1);
  } finally {
    await gate.client.close();
  }
});

test('ping delivery (CIBA §10.2): the gate redeems when pinged, not at its next poll', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'desktop', 'one browser size is enough for the protocol');
  const port = (testInfo.project.metadata as { port: number }).port;
  const email = await enrolledApprover(page, 'Pippa Ping');
  const gate = await startGate(port, email, 'hold_seconds = 40', { mode: 'ping', port: 3197 });
  try {
    const file = join(gate.dir, 'pinged.txt');
    const write = gate.client.callTool({ name: 'write_file', arguments: { path: file, content: 'pinged text' } },
      undefined, { timeout: 60_000 });
    await decide(page, 'Write the file', 'Approve with passkey');
    const decided = Date.now();
    const written = await write;
    expect(written.isError ?? false, text(written)).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('pinged text');
    // Its polls are 15 s apart in ping mode: the call came back on the ping.
    expect(Date.now() - decided).toBeLessThan(10_000);
    expect(gate.stderr()).toContain('notified: the decision is made');
    // Anyone else posting to the endpoint is refused.
    const stranger = await fetch('http://127.0.0.1:3197/ping', { method: 'POST', headers: { Authorization: 'Bearer guess' } });
    expect(stranger.status).toBe(401);
  } finally {
    await gate.client.close();
  }
});

test('push delivery (CIBA §10.3): the pushed token is checked against the call like a polled one', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'desktop', 'one browser size is enough for the protocol');
  const port = (testInfo.project.metadata as { port: number }).port;
  const email = await enrolledApprover(page, 'Paul Push');
  const gate = await startGate(port, email, 'hold_seconds = 40', { mode: 'push', port: 3198 });
  try {
    const file = join(gate.dir, 'pushed.txt');
    const write = gate.client.callTool({ name: 'write_file', arguments: { path: file, content: 'pushed text' } },
      undefined, { timeout: 60_000 });
    await decide(page, 'Write the file', 'Approve with passkey');
    const written = await write;
    expect(written.isError ?? false, text(written)).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('pushed text');
    expect(gate.stderr()).toContain('notified: the decision is made');

    const denied = gate.client.callTool({ name: 'write_file', arguments: { path: file, content: 'never' } },
      undefined, { timeout: 60_000 });
    await decide(page, 'Write the file', 'Deny');
    const refused = await denied;
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain('denied this call');
    expect(readFileSync(file, 'utf8')).toBe('pushed text');
  } finally {
    await gate.client.close();
  }
});

test('a policy that does not fit the upstream is refused at start, with the reason', async ({}, testInfo) => {
  test.skip(testInfo.project.name !== 'desktop', 'no browser involved');
  const dir = mkdtempSync(join(tmpdir(), 'gate-bad-'));
  const run = (policy: string) => {
    writeFileSync(join(dir, 'gate.toml'), policy);
    return spawnSync(bin, ['gate', '--policy', join(dir, 'gate.toml'), '--issuer', 'http://localhost:9', '--client-id', 'x',
      '--', process.execPath, filesystemServer, dir],
    { env: { PATH: process.env.PATH ?? '', COUNTERSIGN_CLIENT_SECRET: 's', RUST_LOG: 'warn' }, encoding: 'utf8', timeout: 30_000 });
  };
  const unknownTool = run('approver = "a@example.com"\n[tools.delete_everything]\ndecision = "deny"\n');
  expect(unknownTool.status).toBe(1);
  expect(unknownTool.stderr).toContain('the policy names tool "delete_everything", which the upstream server does not offer');
  const unknownArgument = run('approver = "a@example.com"\n[tools.write_file]\ndecision = "approve"\naction = "Write {file}"\ntarget = "{path}"\nconsequence = "c"\n');
  expect(unknownArgument.status).toBe(1);
  expect(unknownArgument.stderr).toContain('the template for write_file.action names argument "file", which write_file does not take');
  const noStatement = run('approver = "a@example.com"\n');
  expect(noStatement.stderr).toMatch(/tool "(write_file|edit_file|move_file)" needs approval, so its rule must give action, target and consequence templates/);
});

test('a call nobody decides on in time comes back as a tool error, and nothing is written', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'desktop', 'one browser size is enough for the protocol');
  const port = (testInfo.project.metadata as { port: number }).port;
  const email = await enrolledApprover(page, 'Ezra Expiry');
  const gate = await startGate(port, email, 'hold_seconds = 8\nrequest_expiry_seconds = 2');
  try {
    const file = join(gate.dir, 'late.txt');
    const late = await gate.client.callTool({ name: 'write_file', arguments: { path: file, content: 'too late' } });
    expect(late.isError).toBe(true);
    expect(text(late)).toContain('Nobody approved this call before its approval request expired');
    expect(() => readFileSync(file, 'utf8')).toThrow(/ENOENT/);
  } finally {
    await gate.client.close();
  }
});

test('observe-only forwards everything and logs what would have needed approval', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'desktop', 'one browser size is enough for the protocol');
  const port = (testInfo.project.metadata as { port: number }).port;
  const email = await enrolledApprover(page, 'Otto Observe');
  const gate = await startGate(port, email, 'mode = "observe-only"');
  try {
    const file = join(gate.dir, 'observed.txt');
    const written = await gate.client.callTool({ name: 'write_file', arguments: { path: file, content: 'observed' } });
    expect(written.isError ?? false, text(written)).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('observed');
    const moved = await gate.client.callTool({ name: 'move_file', arguments: { source: file, destination: `${file}.moved` } });
    expect(moved.isError ?? false, text(moved)).toBe(false);
    await expect.poll(gate.stderr).toMatch(/observe-only.*tool=write_file|tool=write_file.*observe-only/);
    expect(gate.stderr()).toMatch(/tool=move_file.*would=Deny|would=Deny.*tool=move_file/);
    await page.goto('/inbox');
    await expect(page.getByText('No requests are waiting for your decision.')).toBeVisible();
  } finally {
    await gate.client.close();
  }
});

/** A mail tool server over streamable HTTP (the SDK's own server), recording each tools/call's
 *  Authorization header. */
async function mailServer() {
  const calls: { tool: string; authorization?: string; dpop?: string }[] = [];
  const proofs: string[] = [];
  const sent: string[] = [];
  const http = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = raw ? JSON.parse(raw) : undefined;
    const dpop = req.headers.dpop as string | undefined;
    if (dpop) proofs.push(dpop);
    if (body?.method === 'tools/call') calls.push({ tool: body.params.name, authorization: req.headers.authorization, dpop });
    const server = new McpServer({ name: 'mail', version: '1.0.0' });
    server.registerTool('list_inbox', { description: 'List messages', inputSchema: {},
      annotations: { readOnlyHint: true } }, async () => ({ content: [{ type: 'text', text: 'no new mail' }] }));
    server.registerTool('send_email', { description: 'Send an email', inputSchema: { to: z.string(), body: z.string() },
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true } },
    async ({ to, body: text }) => { sent.push(`${to}: ${text}`); return { content: [{ type: 'text', text: `sent to ${to}` }] }; });
    server.registerPrompt('summarise', { description: 'Summarise a topic', argsSchema: { topic: z.string() } },
      ({ topic }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Summarise ${topic}` } }] }));
    server.registerResource('signature', 'mail://signature', { mimeType: 'text/plain' },
      async (uri) => ({ contents: [{ uri: uri.href, text: 'Best, Mia' }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => { void transport.close(); void server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`, calls, proofs, sent, close: () => http.close() };
}

for (const dpop of [false, true]) {
test(`over streamable HTTP both ways, the upstream receives the approved call's access token${dpop ? ', DPoP-bound (RFC 9449)' : ''}`, async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'desktop', 'one browser size is enough for the protocol');
  const port = (testInfo.project.metadata as { port: number }).port;
  const email = await enrolledApprover(page, dpop ? 'Dora Dpop' : 'Mia Mail');
  const mail = await mailServer();
  const { client_id, client_secret } = JSON.parse(countersign('client', 'create', '--name', 'Mail gate',
    '--delivery', 'poll', ...(dpop ? ['--dpop'] : []), '--json'));
  const policyFile = join(mkdtempSync(join(tmpdir(), 'gate-http-')), 'gate.toml');
  writeFileSync(policyFile, `approver = "${email}"
[tools.send_email]
decision = "approve"
action = "Send an email to {to}"
target = "{to}"
consequence = "The message leaves the company: {body}"
`);
  const gate = spawn(bin, ['gate', '--policy', policyFile, '--issuer', `http://localhost:${port}`, '--client-id', client_id,
    '--listen', '127.0.0.1:0', '--upstream-url', mail.url, ...(dpop ? ['--dpop'] : [])],
  { env: { PATH: process.env.PATH ?? '', COUNTERSIGN_CLIENT_SECRET: client_secret, RUST_LOG: 'info' } });
  let stderr = '';
  gate.stderr.on('data', (d) => { stderr += d; });
  try {
    await expect.poll(() => stderr, { timeout: 15_000 }).toMatch(/serving MCP at (\S+)/);
    const endpoint = stderr.match(/serving MCP at (\S+)/)![1];
    const client = new Client({ name: 'test-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(endpoint)));

    // Prompts and resources pass through unchanged.
    const prompt = await client.getPrompt({ name: 'summarise', arguments: { topic: 'Q3' } });
    expect(prompt.messages[0].content).toEqual({ type: 'text', text: 'Summarise Q3' });
    expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(['mail://signature']);
    const signature = await client.readResource({ uri: 'mail://signature' });
    expect(signature.contents).toEqual([{ uri: 'mail://signature', text: 'Best, Mia' }]);

    const listed = await client.callTool({ name: 'list_inbox', arguments: {} });
    expect(text(listed)).toBe('no new mail');
    expect(mail.calls).toEqual([{ tool: 'list_inbox', authorization: undefined }]);

    const arguments_ = { to: 'partner@example.org', body: 'The Q3 figures' };
    const send = client.callTool({ name: 'send_email', arguments: arguments_ }, undefined, { timeout: 60_000 });
    await decide(page, 'Send an email to partner@example.org', 'Approve with passkey');
    const sent = await send;
    expect(sent.isError ?? false, text(sent)).toBe(false);
    expect(mail.sent).toEqual(['partner@example.org: The Q3 figures']);
    const call = mail.calls.find((c) => c.tool === 'send_email');
    const authorization = call?.authorization ?? '';
    expect(authorization).toMatch(dpop ? /^DPoP ey/ : /^Bearer ey/);
    const token = authorization.split(' ')[1];
    const claims = decoded(token);
    if (dpop) {
      // The token is bound to the gate's key, and the call's request carries a fresh proof of it,
      // naming this request and this token (RFC 9449 §4.2, §7.1).
      const proof = decoded(call!.dpop!);
      const header = JSON.parse(Buffer.from(call!.dpop!.split('.')[0], 'base64url').toString());
      expect(header.typ).toBe('dpop+jwt');
      expect(claims.cnf.jkt).toBe(thumbprint(header.jwk));
      expect(proof).toMatchObject({ htm: 'POST', htu: mail.url,
        ath: createHash('sha256').update(token).digest('base64url') });
      expect(new Set(mail.proofs.map((p) => decoded(p).jti)).size, 'a new proof for every request').toBe(mail.proofs.length);
    } else {
      expect(call?.dpop).toBeUndefined();
    }
    // The token names this call, and the tool server as its audience.
    expect(claims.aud).toBe(mail.url);
    expect(claims.authorization_details).toEqual([expect.objectContaining({
      type: 'agent_action', tool: 'send_email', arguments: arguments_, resource: mail.url })]);
    await client.close();
  } finally {
    gate.kill();
    mail.close();
  }
});
}

function decoded(jwt: string) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

/** RFC 7638 thumbprint of an EC public key. */
function thumbprint(jwk: { crv: string; x: string; y: string }): string {
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y })).digest('base64url');
}
