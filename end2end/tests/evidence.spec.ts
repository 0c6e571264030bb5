// Evidence anyone can verify: `countersign audit export` writes a bundle of real decisions made on the
// page, and the independent verifier (verify/verify-bundle.mjs, Node's crypto only, written from
// docs/evidence-bundle.md) accepts it, and rejects tampered copies, including one re-signed by
// whoever holds the server's key: only the approver's passkey can vouch for a decision.
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { test, expect } from './fixtures';
import { askFor, countersign, enrolledApprover, hydrated, newClient } from './helpers';

/** RFC 8785 for the plain JSON a record holds (the attacker below needs it to re-hash a record). */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

interface Verdict { records: number; complete: boolean; signatures: number; problems: string[] }

function verifyFile(file: string): { status: number | null; verdict: Verdict } {
  const run = spawnSync('node', ['../verify/verify-bundle.mjs', file, '--json'], { encoding: 'utf8' });
  return { status: run.status, verdict: JSON.parse(run.stdout || '{"problems":["no output"]}') };
}

test('a bundle of real decisions verifies independently, and every tampered copy is rejected', async ({ page, baseURL }, testInfo) => {
  const email = await enrolledApprover(page, 'Eve Evidence');
  const client = newClient();
  await askFor(baseURL!, client, email, 'Refund $75.00', 'order #9');
  await askFor(baseURL!, client, email, 'Close the account', 'customer 42');
  await page.goto('/inbox');
  await page.getByRole('link', { name: /Refund \$75\.00/ }).click();
  await hydrated(page);
  await page.getByRole('button', { name: 'Approve with passkey' }).click();
  await expect(page.getByRole('status')).toContainText('You approved');
  await page.goto('/inbox');
  await page.getByRole('link', { name: /Close the account/ }).click();
  await hydrated(page);
  await page.getByLabel('Reason for denying (optional)').fill('Ask the customer first');
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page.getByRole('status')).toContainText('You denied');

  // This approver's decisions, and then every decision on this server.
  const mine = testInfo.outputPath('mine.json');
  countersign('audit', 'export', '--approver', email, '--out', mine);
  let run = verifyFile(mine);
  expect(run.verdict.problems).toEqual([]);
  expect(run.status).toBe(0);
  expect(run.verdict).toMatchObject({ records: 2, complete: false, signatures: 2 });
  const all = testInfo.outputPath('all.json');
  countersign('audit', 'export', '--out', all);
  run = verifyFile(all);
  expect(run.verdict.problems).toEqual([]);
  expect(run.verdict.complete).toBe(true);
  // The server's own audit agrees.
  expect(JSON.parse(countersign('audit', 'verify', '--json')).findings).toEqual([]);

  const bundle = JSON.parse(readFileSync(mine, 'utf8'));
  const denial = bundle.records.findIndex((r: { decision: string }) => r.decision === 'deny');
  const approval = bundle.records.findIndex((r: { decision: string }) => r.decision === 'approve');
  const approvedId = bundle.records[approval].auth_req_id;
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const resign = (b: typeof bundle, record: Record<string, unknown>) => {
    // Whoever holds the server's key can make a record's hash and server signature fit any content.
    const content = Object.fromEntries(Object.entries(record)
      .filter(([k, v]) => !['seq', 'record_hash', 'jws'].includes(k) && !(k === 'credential_public_key' && v === null)));
    record.record_hash = createHash('sha256').update(canonical(content)).digest('hex');
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'countersign-decision+jwt', kid: 'attacker' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ ...content, record_hash: record.record_hash })).toString('base64url');
    const signature = sign('sha256', Buffer.from(`${header}.${payload}`), { key: attacker.privateKey, dsaEncoding: 'ieee-p1363' });
    record.jws = `${header}.${payload}.${signature.toString('base64url')}`;
    b.server_keys.keys.push({ ...attacker.publicKey.export({ format: 'jwk' }), kid: 'attacker' });
  };
  const tampered: [string, (b: typeof bundle) => void, RegExp][] = [
    ['the deny reason, changed', (b) => { b.records[denial].reason = 'Fine by me'; }, /does not match its hash/],
    ['the approved target, changed', (b) => { b.requests[approvedId].authorization_details[0].target = 'order #10'; },
      /the request has changed since it was decided/],
    ['the approval turned into the denial, re-signed with a server key', (b) => {
      b.records[approval].decision = 'deny';
      resign(b, b.records[approval]);
    }, /does not commit to this decision/],
    ['the reason changed and re-signed with a server key', (b) => {
      b.records[denial].reason = 'Fine by me';
      resign(b, b.records[denial]);
    }, /does not commit to this decision/],
    ['the passkey signature altered, re-signed with a server key', (b) => {
      const der = Buffer.from(b.records[approval].signature, 'base64url');
      der[der.length - 1] ^= 1;
      b.records[approval].signature = der.toString('base64url');
      resign(b, b.records[approval]);
    }, /the passkey signature does not verify/],
    ['the passkey key in the registry, swapped', (b) => {
      const entry = b.key_registry.find((e: { credential_id: string }) => e.credential_id === b.records[approval].credential_id);
      entry.public_key = entry.public_key.replace(/"x":"[^"]+"/, '"x":"AAAA"');
    }, /no sound key registry entry/],
    ['a server key that signed nothing here, only listed', (b) => { b.server_keys.keys = []; }, /does not list/],
  ];
  for (const [what, change, expected] of tampered) {
    const copy = JSON.parse(JSON.stringify(bundle));
    change(copy);
    const file = testInfo.outputPath(`tampered-${tampered.findIndex(([w]) => w === what)}.json`);
    writeFileSync(file, JSON.stringify(copy));
    const verdict = verifyFile(file);
    expect(verdict.status, what).toBe(1);
    expect(verdict.verdict.problems.join('\n'), what).toMatch(expected);
  }

  // A complete bundle with a record taken out of the chain.
  const whole = JSON.parse(readFileSync(all, 'utf8'));
  whole.records.splice(Math.floor(whole.records.length / 2), 1);
  const cut = testInfo.outputPath('cut.json');
  writeFileSync(cut, JSON.stringify(whole));
  const verdict = verifyFile(cut);
  expect(verdict.status).toBe(1);
  expect(verdict.verdict.problems.join('\n')).toMatch(/the chain is broken/);
});
