// SAML 2.0 bearer assertion fixtures for tests (RFC 7522), built with real
// libraries: a self-signed X.509 certificate from the openssl CLI (Node 20 has
// no API that creates certificates) and an enveloped XML signature from
// xml-crypto (exclusive c14n, rsa-sha256, sha256 digest, reference to the
// Assertion's ID attribute), placed right after <saml:Issuer> as the SAML
// schema requires.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SignedXml } from 'xml-crypto';

const execFileAsync = promisify(execFile);

export const SAML_ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
export const SAML_BEARER_METHOD = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
export const XMLDSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
export const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
export const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
export const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
export const SHA1 = 'http://www.w3.org/2000/09/xmldsig#sha1';
export const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
export const ENVELOPED_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

export interface SelfSignedCert {
  /** PKCS#8 private key, PEM */
  keyPem: string;
  /** X.509 certificate, PEM */
  certPem: string;
}

/**
 * A fresh RSA-2048 key and a self-signed certificate for it, made by
 * `openssl req -x509` in a temporary directory (removed afterwards).
 */
export async function makeSelfSignedCert(opts: { cn?: string; days?: number; bits?: number } = {}): Promise<SelfSignedCert> {
  const dir = await mkdtemp(join(tmpdir(), 'tr-saml-cert-'));
  try {
    const keyFile = join(dir, 'k.pem');
    const certFile = join(dir, 'c.pem');
    await execFileAsync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        `rsa:${opts.bits ?? 2048}`,
        '-nodes',
        '-subj',
        `/CN=${opts.cn ?? 'test'}`,
        '-days',
        String(opts.days ?? 2),
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { timeout: 30_000 },
    );
    const [keyPem, certPem] = await Promise.all([readFile(keyFile, 'utf8'), readFile(certFile, 'utf8')]);
    return { keyPem, certPem };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface SamlAssertionOptions {
  issuer: string;
  /** Subject/NameID text: becomes the token's subject at the peer */
  nameId: string;
  /** SubjectConfirmationData/@Recipient: the token endpoint URL */
  recipient: string;
  /** Conditions/AudienceRestriction/Audience (one or several) */
  audience: string | string[];
  /** Default NotOnOrAfter for both Conditions and SubjectConfirmationData */
  notOnOrAfter: Date;
  keyPem: string;
  certPem: string;
  /** Overrides notOnOrAfter for SubjectConfirmationData only */
  subjectConfirmationNotOnOrAfter?: Date;
  /** Overrides notOnOrAfter for Conditions only */
  conditionsNotOnOrAfter?: Date;
  /** Conditions/@NotBefore; default: 1 minute before now. null: no NotBefore attribute */
  notBefore?: Date | null;
  /** Assertion/@ID; default: "_" + 32 random hex chars */
  id?: string;
  /** default: now */
  issueInstant?: Date;
  /** default: now */
  authnInstant?: Date;
  nameIdFormat?: string;
  /** default: urn:oasis:names:tc:SAML:2.0:cm:bearer */
  subjectConfirmationMethod?: string;
  /** default true */
  includeAuthnStatement?: boolean;
  /** extra saml:Attribute name -> values, in an AttributeStatement */
  attributes?: Record<string, string | string[]>;
  /** default rsa-sha256 */
  signatureAlgorithm?: string;
  /** default sha256 */
  digestAlgorithm?: string;
  /** Put the certificate in ds:KeyInfo (the peer ignores it and uses the registered one). Default true. */
  includeKeyInfo?: boolean;
}

export interface SignedSamlAssertion {
  /** the signed Assertion XML document */
  xml: string;
  /** RFC 7522 §2.1 encoding of `xml`: base64url, no padding, no line breaks */
  assertion: string;
  id: string;
}

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttr(s: string): string {
  return escapeText(s).replace(/"/g, '&quot;').replace(/\r/g, '&#xD;').replace(/\n/g, '&#xA;').replace(/\t/g, '&#x9;');
}

/** xs:dateTime in UTC, second precision, as SAML issuers usually write it */
export function samlInstant(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** base64url without padding (RFC 7522 §2.1) */
export function encodeSamlAssertion(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64url');
}

/** The unsigned Assertion XML (compact, no insignificant whitespace). */
export function buildSamlAssertionXml(o: Omit<SamlAssertionOptions, 'keyPem' | 'certPem'> & { id: string }): string {
  const now = new Date();
  const audiences = Array.isArray(o.audience) ? o.audience : [o.audience];
  const scdNotOnOrAfter = o.subjectConfirmationNotOnOrAfter ?? o.notOnOrAfter;
  const condNotOnOrAfter = o.conditionsNotOnOrAfter ?? o.notOnOrAfter;
  const notBefore = o.notBefore === undefined ? new Date(now.getTime() - 60_000) : o.notBefore;
  const parts: string[] = [];
  parts.push(
    `<saml:Assertion xmlns:saml="${SAML_ASSERTION_NS}" ID="${escapeAttr(o.id)}" Version="2.0" IssueInstant="${samlInstant(o.issueInstant ?? now)}">`,
    `<saml:Issuer>${escapeText(o.issuer)}</saml:Issuer>`,
    '<saml:Subject>',
    `<saml:NameID Format="${escapeAttr(o.nameIdFormat ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified')}">${escapeText(o.nameId)}</saml:NameID>`,
    `<saml:SubjectConfirmation Method="${escapeAttr(o.subjectConfirmationMethod ?? SAML_BEARER_METHOD)}">`,
    `<saml:SubjectConfirmationData NotOnOrAfter="${samlInstant(scdNotOnOrAfter)}" Recipient="${escapeAttr(o.recipient)}"/>`,
    '</saml:SubjectConfirmation>',
    '</saml:Subject>',
    `<saml:Conditions${notBefore ? ` NotBefore="${samlInstant(notBefore)}"` : ''} NotOnOrAfter="${samlInstant(condNotOnOrAfter)}">`,
    '<saml:AudienceRestriction>',
    ...audiences.map((a) => `<saml:Audience>${escapeText(a)}</saml:Audience>`),
    '</saml:AudienceRestriction>',
    '</saml:Conditions>',
  );
  if (o.includeAuthnStatement ?? true) {
    parts.push(
      `<saml:AuthnStatement AuthnInstant="${samlInstant(o.authnInstant ?? now)}">`,
      '<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified</saml:AuthnContextClassRef></saml:AuthnContext>',
      '</saml:AuthnStatement>',
    );
  }
  if (o.attributes && Object.keys(o.attributes).length > 0) {
    parts.push('<saml:AttributeStatement>');
    for (const [name, value] of Object.entries(o.attributes)) {
      parts.push(`<saml:Attribute Name="${escapeAttr(name)}">`);
      for (const v of Array.isArray(value) ? value : [value]) parts.push(`<saml:AttributeValue>${escapeText(v)}</saml:AttributeValue>`);
      parts.push('</saml:Attribute>');
    }
    parts.push('</saml:AttributeStatement>');
  }
  parts.push('</saml:Assertion>');
  return parts.join('');
}

/**
 * Build a SAML 2.0 Assertion and sign it with an enveloped XML signature
 * (xml-crypto SignedXml: exclusive c14n, rsa-sha256 by default, reference
 * URI "#<ID>"). Returns the XML and its RFC 7522 base64url form.
 */
export function buildSignedSamlAssertion(o: SamlAssertionOptions): SignedSamlAssertion {
  const id = o.id ?? `_${randomBytes(16).toString('hex')}`;
  const xml = buildSamlAssertionXml({ ...o, id });
  const sig = new SignedXml({
    privateKey: o.keyPem,
    publicCert: o.certPem,
    signatureAlgorithm: o.signatureAlgorithm ?? RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
    ...(o.includeKeyInfo === false ? { getKeyInfoContent: () => null } : {}),
  });
  sig.addReference({
    xpath: "/*[local-name(.)='Assertion' and namespace-uri(.)='urn:oasis:names:tc:SAML:2.0:assertion']",
    transforms: [ENVELOPED_SIGNATURE, EXC_C14N],
    digestAlgorithm: o.digestAlgorithm ?? SHA256,
  });
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: {
      reference: "/*[local-name(.)='Assertion']/*[local-name(.)='Issuer']",
      action: 'after',
    },
  });
  const signed = sig.getSignedXml();
  return { xml: signed, assertion: encodeSamlAssertion(signed), id };
}
