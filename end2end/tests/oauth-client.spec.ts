// A standard OAuth client library (oauth4webapi, from npm) against the real server: discovery, the
// backchannel request, polling, and the approver's denial, read the way RFC 6749 §5.2 and CIBA §11/§13
// define them.
import * as oauth from 'oauth4webapi';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { test, expect } from './fixtures';
import { countersign, enrolledApprover, hydrated, newClient } from './helpers';

const insecure = { [oauth.allowInsecureRequests]: true }; // the test server is plain http on loopback

test('oauth4webapi reads pending and denied at /token as HTTP 400, a refused /bc-authorize as 403', async ({ page, baseURL }) => {
  const email = await enrolledApprover(page, 'Olive Oauth');
  const creds = newClient();
  const issuer = new URL(baseURL!);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  const client: oauth.Client = { client_id: creds.client_id };
  const auth = oauth.ClientSecretBasic(creds.client_secret);
  const ask = (action: string) => oauth.backchannelAuthenticationRequest(as, client, auth, {
    scope: 'openid',
    login_hint: email,
    authorization_details: JSON.stringify([{ type: 'agent_action', action, target: 'repository "legacy"',
      consequence: 'Its history is gone for good.' }]),
  }, insecure);
  const poll = async (id: string) => oauth.processBackchannelAuthenticationGrantResponse(as, client,
    await oauth.backchannelAuthenticationGrantRequest(as, client, auth, id, insecure));

  const started = await oauth.processBackchannelAuthenticationResponse(as, client, await ask('Delete'));
  // CIBA §11: authorization_pending, with HTTP 400 as every token error but invalid_client (RFC 6749 §5.2).
  await expect(poll(started.auth_req_id)).rejects.toMatchObject({ error: 'authorization_pending', status: 400 });

  await page.getByRole('link', { name: /Delete/ }).click();
  await hydrated(page);
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page.getByRole('status')).toContainText('You denied this request');
  // CIBA §11: access_denied after the end-user's denial, still HTTP 400 at the token endpoint.
  await expect(poll(started.auth_req_id)).rejects.toMatchObject({ error: 'access_denied', status: 400 });

  // CIBA §13: at the backchannel endpoint, access_denied is HTTP 403 (here: the approver already has the
  // most pending requests from this agent that COUNTERSIGN_MAX_PENDING_PER_APPROVER allows, 5).
  for (let i = 0; i < 5; i++) {
    await oauth.processBackchannelAuthenticationResponse(as, client, await ask(`Delete ${i}`));
  }
  await expect(oauth.processBackchannelAuthenticationResponse(as, client, await ask('Delete 6')))
    .rejects.toMatchObject({ error: 'access_denied', status: 403 });
});

test('ping mode (CIBA §10.2): oauth4webapi asks, the approver approves on the page, the ping arrives, one token request redeems', async ({ page, baseURL }) => {
  const email = await enrolledApprover(page, 'Pia Ping');
  // The agent's notification endpoint, on loopback (the server allows it: COUNTERSIGN_ALLOW_LOOPBACK_NOTIFY).
  const pings: { authorization?: string; contentType?: string; body: string }[] = [];
  let pinged!: () => void;
  const arrived = new Promise<void>((resolve) => { pinged = resolve; });
  const endpoint = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      pings.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], body });
      res.writeHead(204).end();
      pinged();
    });
  });
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  try {
    const port = (endpoint.address() as AddressInfo).port;
    const creds = JSON.parse(countersign('client', 'create', '--name', 'Ping agent', '--delivery', 'ping',
      '--notify-url', `http://127.0.0.1:${port}/cb`, '--json'));
    const issuer = new URL(baseURL!);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
    expect(as.backchannel_token_delivery_modes_supported).toContain('ping');
    const client: oauth.Client = { client_id: creds.client_id };
    const auth = oauth.ClientSecretBasic(creds.client_secret);
    const notificationToken = randomBytes(24).toString('base64url');
    const started = await oauth.processBackchannelAuthenticationResponse(as, client,
      await oauth.backchannelAuthenticationRequest(as, client, auth, {
        scope: 'openid',
        login_hint: email,
        client_notification_token: notificationToken,
        authorization_details: JSON.stringify([{ type: 'agent_action', action: 'Rotate the API key',
          target: 'service "billing"', consequence: 'The old key stops working at once.' }]),
      }, insecure));

    await page.getByRole('link', { name: /Rotate the API key/ }).click();
    await hydrated(page);
    await page.getByRole('button', { name: 'Approve with passkey' }).click();
    await expect(page.getByRole('status')).toContainText('You approved');
    await arrived;
    expect(pings).toEqual([{
      authorization: `Bearer ${notificationToken}`,
      contentType: 'application/json',
      body: JSON.stringify({ auth_req_id: started.auth_req_id }),
    }]);
    const tokens = await oauth.processBackchannelAuthenticationGrantResponse(as, client,
      await oauth.backchannelAuthenticationGrantRequest(as, client, auth, started.auth_req_id, insecure));
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.access_token).toBeTruthy();
  } finally {
    endpoint.close();
  }
});

test('DPoP-bound poll mode (RFC 9449): oauth4webapi binds the request and the tokens to its key; the tool sees the binding', async ({ page, baseURL }) => {
  const email = await enrolledApprover(page, 'Dora Dpop');
  const creds = JSON.parse(countersign('client', 'create', '--name', 'Careful agent', '--delivery', 'poll',
    '--dpop', '--json'));
  const tool = JSON.parse(countersign('client', 'create', '--name', 'Billing API', '--delivery', 'poll',
    '--resource-server', '--json'));
  const issuer = new URL(baseURL!);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  expect(as.dpop_signing_alg_values_supported).toContain('ES256');
  const client: oauth.Client = { client_id: creds.client_id };
  const auth = oauth.ClientSecretBasic(creds.client_secret);
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  const jkt = await DPoP.calculateThumbprint();
  const started = await oauth.processBackchannelAuthenticationResponse(as, client,
    await oauth.backchannelAuthenticationRequest(as, client, auth, {
      scope: 'openid',
      login_hint: email,
      dpop_jkt: jkt, // RFC 9449 §10: only a proof by this key redeems the request
      authorization_details: JSON.stringify([{ type: 'agent_action', action: 'Scale down the cluster',
        target: 'cluster "prod-eu"', consequence: 'Half of the nodes stop.' }]),
    }, insecure));
  const request = (dpop?: oauth.DPoPHandle) => oauth.backchannelAuthenticationGrantRequest(as, client, auth,
    started.auth_req_id, { ...insecure, DPoP: dpop });
  const redeem = async () => oauth.processBackchannelAuthenticationGrantResponse(as, client, await request(DPoP));

  // RFC 9449 §5.2: this client must prove; §8: the server wants its nonce in the proof.
  await expect(oauth.processBackchannelAuthenticationGrantResponse(as, client, await request()))
    .rejects.toMatchObject({ error: 'invalid_dpop_proof', status: 400 });
  const first = redeem();
  await expect(first).rejects.toMatchObject({ error: 'use_dpop_nonce', status: 400 });
  expect(oauth.isDPoPNonceError(await first.catch((e) => e))).toBe(true);
  // The handle kept the nonce; the next proof carries it and the poll is answered as usual.
  await expect(redeem()).rejects.toMatchObject({ error: 'authorization_pending', status: 400 });

  await page.getByRole('link', { name: /Scale down the cluster/ }).click();
  await hydrated(page);
  await page.getByRole('button', { name: 'Approve with passkey' }).click();
  await expect(page.getByRole('status')).toContainText('You approved');

  const tokens = await redeem();
  expect(tokens.token_type.toLowerCase()).toBe('dpop');
  const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
  expect(claims.cnf).toEqual({ jkt });

  // The tool the agent calls learns the binding by introspection (§6.2), and checks the agent's proofs
  // against it.
  const introspected = await oauth.processIntrospectionResponse(as, { client_id: tool.client_id },
    await oauth.introspectionRequest(as, { client_id: tool.client_id },
      oauth.ClientSecretBasic(tool.client_secret), tokens.access_token, insecure));
  expect(introspected).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
});
