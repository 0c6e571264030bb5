#!/usr/bin/env node
// An independent verifier of Countersign evidence bundles (`countersign audit export`), written from
// the format's specification (docs/evidence-bundle.md), not from the server's code. It needs Node.js
// (18 or later) and nothing else: hashing and signatures come from node:crypto (OpenSSL).
//
//   node verify/verify-bundle.mjs BUNDLE.json [--json]
//
// It checks, from the bundle alone:
//   - the server's keys: each record, registry entry and the checkpoint is signed (ES256 JWS) by one
//     of the public keys the bundle lists, and the signature covers exactly the stored content;
//   - the passkey key registry: a hash chain from the genesis hash, each entry's hash and signature,
//     and each key's provenance (an added key's authorisation: an earlier passkey of the same approver
//     signed the addition challenge for exactly that key);
//   - every decision record: its hash, its server signature, its link to the record before it, that
//     the request it decided is the one in the bundle (the SHA-256 of its canonical statement), that
//     the passkey challenge commits to this decision (approve or deny, with the reason) on this
//     request, that the approver's passkey signed the assertion for this site with user presence and
//     verification, and that the passkey's key is the one the registry holds for that approver;
//   - for a complete bundle, that the records form one unbroken chain from the genesis hash, and that
//     the chains reach the heads the signed checkpoint names.
// Exit status: 0 when everything verifies, 1 when anything does not (each problem is printed), 2 when
// the bundle cannot be read at all. Notes (such as a missing checkpoint) say what could not be checked.
import { readFileSync } from 'node:fs';
import { createHash, createPublicKey, verify } from 'node:crypto';

const FORMAT = 'countersign-evidence-bundle/1';
const GENESIS = '0'.repeat(64);
const TYPES = {
  record: 'countersign-decision+jwt',
  entry: 'countersign-passkey-key+jwt',
  checkpoint: 'countersign-checkpoint+jwt',
};
const CHALLENGE_TAG = Buffer.from('countersign/decision/v2');
const CHALLENGE_TAG_V1 = Buffer.from('countersign/decision/v1');
const ADDITION_TAG = Buffer.from('countersign/passkey-addition/v1\0');

const sha256 = (data) => createHash('sha256').update(data).digest();
const hex = (buf) => Buffer.from(buf).toString('hex');
const b64u = (buf) => Buffer.from(buf).toString('base64url');
const fromB64u = (text) => Buffer.from(text, 'base64url');

/** RFC 8785 (JCS) for the JSON the bundle holds: strings, integers, booleans, null, arrays, objects. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    // JCS sorts members by their names' UTF-16 code units, which is how JavaScript compares strings.
    const names = Object.keys(value).sort();
    return `{${names.map((n) => `${JSON.stringify(n)}:${canonical(value[n])}`).join(',')}}`;
  }
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new Error(`a number the format never holds: ${value}`);
  }
  return JSON.stringify(value);
}

/** The claims of a compact ES256 JWS of type `typ`, if one of `keys` (kid → KeyObject) signed it. */
function verifiedClaims(jws, typ, keys) {
  const parts = typeof jws === 'string' ? jws.split('.') : [];
  if (parts.length !== 3) throw new Error('not a compact JWS');
  const [head, body, signature] = parts;
  const header = JSON.parse(fromB64u(head).toString('utf8'));
  if (header.alg !== 'ES256') throw new Error(`alg is ${header.alg}, not ES256`);
  if (header.typ !== typ) throw new Error(`typ is ${header.typ}, not ${typ}`);
  const key = keys.get(header.kid);
  if (!key) throw new Error(`signed by key ${header.kid}, which the bundle does not list`);
  const ok = verify('sha256', Buffer.from(`${head}.${body}`), { key, dsaEncoding: 'ieee-p1363' },
    fromB64u(signature));
  if (!ok) throw new Error('the server signature does not verify');
  return JSON.parse(fromB64u(body).toString('utf8'));
}

/** A passkey's public key, from the COSE key JSON the registry and records hold (see the spec). */
function passkeyKey(coseJson) {
  const cose = JSON.parse(coseJson);
  const [[kind, key]] = Object.entries(cose.key);
  const b64 = (v) => (typeof v === 'string' ? v : b64u(Buffer.from(v)));
  if (kind === 'EC_EC2') {
    const curves = { SECP256R1: ['P-256', 'sha256'], SECP384R1: ['P-384', 'sha384'], SECP521R1: ['P-521', 'sha512'] };
    const [crv, hash] = curves[key.curve] ?? [];
    if (!crv) throw new Error(`unsupported curve ${key.curve}`);
    return { hash, dsaEncoding: 'der', key: createPublicKey({ format: 'jwk', key: { kty: 'EC', crv, x: b64(key.x), y: b64(key.y) } }) };
  }
  if (kind === 'EC_OKP' && key.curve === 'ED25519') {
    return { hash: null, key: createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64(key.x) } }) };
  }
  if (kind === 'RSA' && cose.type_ === 'RS256') {
    return { hash: 'sha256', key: createPublicKey({ format: 'jwk', key: { kty: 'RSA', n: b64(key.n), e: b64(key.e) } }) };
  }
  throw new Error(`unsupported passkey key ${kind} ${cose.type_}`);
}

function challenge(record, digest, version) {
  const approve = Buffer.from([record.decision === 'approve' ? 1 : 0]);
  const nonce = fromB64u(record.nonce);
  if (version === 1) return sha256(Buffer.concat([CHALLENGE_TAG_V1, approve, digest, nonce]));
  const hasReason = Buffer.from([record.reason === null || record.reason === undefined ? 0 : 1]);
  const reason = sha256(Buffer.from(record.reason ?? '', 'utf8'));
  return sha256(Buffer.concat([CHALLENGE_TAG, approve, digest, hasReason, reason, nonce]));
}

function recordContent(r) {
  const content = {
    auth_req_id: r.auth_req_id, request_digest: r.request_digest, decision: r.decision, reason: r.reason ?? null,
    approver_id: r.approver_id, credential_id: r.credential_id, authenticator_data: r.authenticator_data,
    client_data_json: r.client_data_json, signature: r.signature, nonce: r.nonce, decided_at: r.decided_at,
    prev_hash: r.prev_hash,
  };
  if (r.credential_public_key !== null && r.credential_public_key !== undefined) {
    content.credential_public_key = r.credential_public_key;
  }
  if (r.group_id !== null && r.group_id !== undefined) content.group = r.group_id;
  if (r.on_behalf_of !== null && r.on_behalf_of !== undefined) content.on_behalf_of = r.on_behalf_of;
  return content;
}

function entryContent(e) {
  const content = { credential_id: e.credential_id, approver_id: e.approver_id, public_key: e.public_key,
    registered_at: e.registered_at, prev_hash: e.prev_hash };
  if (e.provenance !== null && e.provenance !== undefined) content.provenance = e.provenance;
  return content;
}

/** Whether the passkey whose COSE key JSON is `coseJson` signed authenticatorData ‖ SHA-256(clientDataJSON). */
function passkeySigned(coseJson, authData, clientDataJson, signature) {
  const { hash, key, dsaEncoding } = passkeyKey(coseJson);
  const signed = Buffer.concat([authData, sha256(clientDataJson)]);
  return verify(hash, signed, dsaEncoding ? { key, dsaEncoding } : key, signature);
}

/** The challenge an existing passkey signs to authorise adding a key (see the spec, "Provenance"). */
function additionChallenge(approverId, credentialId, publicKey, nonce) {
  const field = (text) => {
    const bytes = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(bytes.length));
    return Buffer.concat([length, bytes]);
  };
  return sha256(Buffer.concat([ADDITION_TAG, field(approverId), field(credentialId),
    sha256(Buffer.from(publicKey, 'utf8')), nonce]));
}

/** What is wrong with an entry's provenance, given the sound entries before it; null when it holds. */
function provenanceProblem(entry, registered, rp, rpIdHash) {
  const p = entry.provenance;
  if (p.via === 'invitation') return typeof p.invitation === 'string' ? null : 'the provenance names no invitation';
  if (p.via === 'recovery') {
    // Started by one admin and approved by another (both null: the operator, on the server). The
    // admins' passkey confirmations are in the server's admin log, which `audit verify` checks.
    if (typeof p.recovery !== 'string') return 'the provenance names no recovery';
    if ((p.started_by === null) !== (p.approved_by === null)) return 'the recovery names only one of its two admins';
    if (p.started_by !== null && p.started_by === p.approved_by) return 'the recovery was approved by the admin who started it';
    return null;
  }
  if (p.via !== 'addition') return `the provenance is of an unknown kind (${p.via})`;
  if (p.authorised_by === entry.credential_id) return 'the passkey authorised its own addition';
  const authoriser = registered.get(p.authorised_by);
  if (!authoriser) return 'the passkey that authorised the addition has no earlier, sound key registry entry';
  if (authoriser.approver_id !== entry.approver_id) return 'the passkey that authorised the addition belongs to another approver';
  const a = p.assertion;
  const clientData = JSON.parse(fromB64u(a.client_data_json).toString('utf8'));
  const expected = b64u(additionChallenge(entry.approver_id, entry.credential_id, entry.public_key, fromB64u(a.nonce)));
  if (clientData.type !== 'webauthn.get' || clientData.origin !== rp.origin || clientData.challenge !== expected) {
    return 'the authorising assertion does not commit to adding this key';
  }
  const authData = fromB64u(a.authenticator_data);
  if (authData.length < 37 || !authData.subarray(0, 32).equals(rpIdHash)) return `the authorising assertion was not made for ${rp.id}`;
  if ((authData[32] & 0x01) === 0 || (authData[32] & 0x04) === 0) return 'the authorising assertion lacks user presence or user verification';
  if (!passkeySigned(authoriser.public_key, authData, fromB64u(a.client_data_json), fromB64u(a.signature))) {
    return 'the passkey signature does not verify';
  }
  return null;
}

/** Every problem found in `bundle`, and what was checked. */
export function verifyBundle(bundle) {
  const problems = [];
  const notes = [];
  const problem = (about, text) => problems.push(`${about}: ${text}`);
  if (bundle.format !== FORMAT) throw new Error(`not a ${FORMAT} bundle (format ${bundle.format})`);
  const keys = new Map();
  for (const jwk of bundle.server_keys?.keys ?? []) {
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || jwk.d !== undefined) {
      problem(`server key ${jwk.kid}`, 'not a public P-256 key');
      continue;
    }
    keys.set(jwk.kid, createPublicKey({ format: 'jwk', key: jwk }));
  }
  const rp = bundle.relying_party;
  const rpIdHash = sha256(Buffer.from(rp.id, 'utf8'));

  // The key registry: one chain from the genesis hash, every entry hashed and signed, and each key's
  // provenance: an addition is authorised by an earlier sound entry of the same approver.
  const registered = new Map();
  const unvouched = [];
  let prev = GENESIS;
  for (const entry of bundle.key_registry) {
    const about = `key registry entry ${entry.seq}`;
    let sound = true;
    const fail = (text) => { problem(about, text); sound = false; };
    if (entry.prev_hash !== prev) fail('the chain is broken: prev_hash is not the previous entry\'s hash');
    const content = entryContent(entry);
    if (hex(sha256(canonical(content))) !== entry.entry_hash) fail('its content does not match its hash');
    try {
      const claims = verifiedClaims(entry.jws, TYPES.entry, keys);
      if (canonical(claims) !== canonical({ ...content, entry_hash: entry.entry_hash })) {
        fail('the server signature covers different content');
      }
    } catch (e) { fail(e.message); }
    if (entry.provenance === null || entry.provenance === undefined) {
      unvouched.push(entry.seq);
    } else {
      try {
        const why = provenanceProblem(entry, registered, rp, rpIdHash);
        if (why) fail(why);
      } catch (e) { fail(`the provenance cannot be read: ${e.message}`); }
    }
    if (sound) registered.set(entry.credential_id, entry);
    prev = entry.entry_hash;
  }
  if (unvouched.length > 0) {
    notes.push(`${unvouched.length} key registry entries record no provenance (sealed before it was kept): entries ${unvouched.join(', ')}`);
  }

  // The decision records.
  let previous = null;
  let signatures = 0;
  let linked = 0;
  // Per request: the distinct people whose approvals the records hold, and whether one denied.
  const approvals = new Map();
  for (const record of bundle.records) {
    const about = `record ${record.seq} (${record.auth_req_id})`;
    if (previous !== null && record.seq <= previous.seq) problem(about, 'records are out of order');
    // A complete bundle is the whole chain: each record links to the one before (sequence numbers may
    // skip: a database may spend one on a transaction that never committed). A selection links where
    // neighbours were both selected; elsewhere the link lies outside the bundle.
    const expected = previous === null ? GENESIS : previous.record_hash;
    if (bundle.complete && record.prev_hash !== expected) {
      problem(about, 'the chain is broken: prev_hash is not the previous record\'s hash');
    }
    if (!bundle.complete && record.prev_hash === expected) linked += 1;
    const content = recordContent(record);
    if (hex(sha256(canonical(content))) !== record.record_hash) problem(about, 'its content does not match its hash');
    try {
      const claims = verifiedClaims(record.jws, TYPES.record, keys);
      if (canonical(claims) !== canonical({ ...content, record_hash: record.record_hash })) {
        problem(about, 'the server signature covers different content');
      }
    } catch (e) { problem(about, e.message); }

    const statement = bundle.requests[record.auth_req_id];
    let digest = null;
    if (!statement) {
      problem(about, 'the bundle lacks the request it decided');
    } else {
      digest = sha256(canonical(statement));
      if (statement.auth_req_id !== record.auth_req_id) problem(about, 'the request in the bundle is another one');
      // A shared request (to a group, under a policy, or handed to a delegate) is decided by the
      // people it was addressed to; any other by the approver it names.
      const addressed = (bundle.addressees ?? {})[record.auth_req_id];
      if (addressed !== undefined) {
        if (!addressed.includes(record.approver_id)) {
          problem(about, 'the record names someone the request was not addressed to');
        }
      } else if (statement.approver !== record.approver_id) {
        problem(about, 'the request names another approver');
      }
      const people = approvals.get(record.auth_req_id) ?? { approved: new Set(), denied: false };
      if (record.decision === 'approve') people.approved.add(record.approver_id);
      else people.denied = true;
      approvals.set(record.auth_req_id, people);
      if (hex(digest) !== record.request_digest) problem(about, 'the request has changed since it was decided');
    }

    const clientData = JSON.parse(fromB64u(record.client_data_json).toString('utf8'));
    if (clientData.type !== 'webauthn.get') problem(about, 'the assertion is not a webauthn.get');
    if (clientData.origin !== rp.origin) problem(about, `the assertion was made on ${clientData.origin}, not ${rp.origin}`);
    if (digest) {
      const current = b64u(challenge(record, digest, 2));
      const older = b64u(challenge(record, digest, 1));
      if (clientData.challenge !== current && clientData.challenge !== older) {
        problem(about, 'the passkey assertion does not commit to this decision on this request');
      }
    }

    const authData = fromB64u(record.authenticator_data);
    if (authData.length < 37 || !authData.subarray(0, 32).equals(rpIdHash)) {
      problem(about, `the assertion was not made for ${rp.id}`);
    } else if ((authData[32] & 0x01) === 0 || (authData[32] & 0x04) === 0) {
      problem(about, 'the assertion lacks user presence or user verification');
    }
    if (record.credential_public_key) {
      try {
        if (passkeySigned(record.credential_public_key, authData, fromB64u(record.client_data_json),
          fromB64u(record.signature))) {
          signatures += 1;
        } else {
          problem(about, 'the passkey signature does not verify');
        }
      } catch (e) { problem(about, `the passkey key cannot be used: ${e.message}`); }
      const entry = registered.get(record.credential_id);
      if (!entry) problem(about, 'the passkey that signed has no sound key registry entry');
      else if (entry.approver_id !== record.approver_id) problem(about, 'the passkey that signed belongs to another approver');
      else if (entry.public_key !== record.credential_public_key) problem(about, 'the recorded public key is not the one registered for this passkey');
    } else {
      problem(about, 'the record keeps no passkey public key: its signature cannot be checked');
    }
    previous = record;
  }

  // Every request marked approved met the rule its (signed) statement names: as many approvals by
  // distinct people as the policy asks (one without a policy), and no denial.
  for (const [id, status] of Object.entries(bundle.request_status ?? {})) {
    if (status !== 'approved' && status !== 'redeemed') continue;
    const statement = bundle.requests[id];
    const needed = statement?.policy?.approvals ?? 1;
    const people = approvals.get(id) ?? { approved: new Set(), denied: false };
    if (people.denied) problem(`request ${id}`, 'marked approved, and one of its records is a denial');
    else if (people.approved.size < needed) {
      problem(`request ${id}`, `marked approved with approvals by ${people.approved.size} people, and its policy asks for ${needed}`);
    }
  }

  // The checkpoint: signed, and (for a complete bundle) naming the heads the chains reach.
  if (bundle.checkpoint) {
    try {
      const checkpoint = verifiedClaims(bundle.checkpoint, TYPES.checkpoint, keys);
      if (bundle.complete) {
        const chains = [
          ['decision record', checkpoint.decisions, bundle.records.map((r) => [r.seq, r.record_hash])],
          ['key registry', checkpoint.key_registry, bundle.key_registry.map((e) => [e.seq, e.entry_hash])],
        ];
        for (const [name, head, chain] of chains) {
          if (!head || head.seq === 0) continue;
          const found = chain.find(([seq]) => seq === head.seq);
          if (!found) problem('checkpoint', `the ${name} chain has no entry ${head.seq}, which the checkpoint saw: entries were deleted`);
          else if (found[1] !== head.hash) problem('checkpoint', `the ${name} chain's entry ${head.seq} differs from the checkpoint`);
        }
      }
    } catch (e) { problem('checkpoint', e.message); }
  } else if (bundle.complete) {
    notes.push('the bundle holds no checkpoint: a deleted tail of the chains would go unseen');
  }
  return { records: bundle.records.length, complete: Boolean(bundle.complete), linked, signatures,
    entries: bundle.key_registry.length, problems, notes };
}

function main() {
  const [file, ...flags] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node verify-bundle.mjs BUNDLE.json [--json]');
    process.exit(2);
  }
  let result;
  try {
    result = verifyBundle(JSON.parse(readFileSync(file, 'utf8')));
  } catch (e) {
    console.error(`cannot read the bundle: ${e.message}`);
    process.exit(2);
  }
  if (flags.includes('--json')) {
    console.log(JSON.stringify(result));
  } else {
    for (const p of result.problems) console.log(`PROBLEM ${p}`);
    for (const n of result.notes) console.log(`NOTE ${n}`);
    console.log(`${result.records} records, ${result.signatures} passkey signatures, ${result.entries} key registry entries: ${result.problems.length === 0 ? 'all verified' : `${result.problems.length} problems`}`);
  }
  process.exit(result.problems.length === 0 ? 0 : 1);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
