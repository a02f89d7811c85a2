import { randomUUID, createPrivateKey } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import { AppError } from '../../core/errors.js';
import type { ProviderSecrets } from '../../registry/providers.js';

/**
 * A SAML 2.0 assertion for the SAML2-bearer grant (RFC 7522 §3), signed with xml-crypto:
 * Issuer; Subject/NameID with a bearer SubjectConfirmation whose Recipient is the token URL
 * and NotOnOrAfter bounds it; Conditions with an AudienceRestriction; an AuthnStatement. The
 * enveloped signature (exclusive c14n, SHA-256) sits right after Issuer, where the SAML schema
 * puts it, and covers the whole assertion by its ID.
 */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const SIG_ALGS: Record<string, string> = {
  RS256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  RS384: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384',
  RS512: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
};

export function saml2BearerAssertion(p: ProviderSecrets, now: number): string {
  const a = p.assertion ?? {};
  if (!p.privateKeyPem) {
    throw new AppError('invalid_request', { message: `Provider "${p.row.name}" has no assertion.private_key_pem; the SAML2-bearer grant signs with it.` });
  }
  if (!a.subject) {
    throw new AppError('invalid_request', { message: `Provider "${p.row.name}" has no assertion.subject (the NameID of the SAML assertion).` });
  }
  const alg = a.signing_alg ?? 'RS256';
  const signatureAlgorithm = SIG_ALGS[alg];
  if (!signatureAlgorithm) {
    throw new AppError('invalid_request', { message: `Provider "${p.row.name}": SAML assertions are signed with RS256, RS384 or RS512, not ${alg}.` });
  }
  try {
    createPrivateKey(p.privateKeyPem);
  } catch (err) {
    throw new AppError('invalid_request', { message: `Provider "${p.row.name}": assertion.private_key_pem is not a readable private key (${(err as Error).message}).` });
  }
  const id = `_${randomUUID()}`;
  const instant = new Date(now).toISOString();
  const notOnOrAfter = new Date(now + (a.lifetime_s ?? 300) * 1000).toISOString();
  const notBefore = new Date(now - 60_000).toISOString();
  const recipient = p.row.token_url;
  const audience = a.audience ?? p.row.token_url;
  const issuer = a.issuer ?? p.row.client_id;
  const xml =
    `<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" IssueInstant="${instant}" Version="2.0">` +
    `<saml2:Issuer>${esc(issuer)}</saml2:Issuer>` +
    `<saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">${esc(a.subject)}</saml2:NameID>` +
    `<saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">` +
    `<saml2:SubjectConfirmationData NotOnOrAfter="${notOnOrAfter}" Recipient="${esc(recipient)}"/>` +
    `</saml2:SubjectConfirmation></saml2:Subject>` +
    `<saml2:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}">` +
    `<saml2:AudienceRestriction><saml2:Audience>${esc(audience)}</saml2:Audience></saml2:AudienceRestriction>` +
    `</saml2:Conditions>` +
    `<saml2:AuthnStatement AuthnInstant="${instant}"><saml2:AuthnContext>` +
    `<saml2:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified</saml2:AuthnContextClassRef>` +
    `</saml2:AuthnContext></saml2:AuthnStatement>` +
    `</saml2:Assertion>`;
  const sig = new SignedXml({
    privateKey: p.privateKeyPem,
    ...(a.certificate_pem ? { publicCert: a.certificate_pem } : {}),
    signatureAlgorithm,
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: `//*[local-name(.)='Assertion']`,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `//*[local-name(.)='Issuer']`, action: 'after' },
  });
  return Buffer.from(sig.getSignedXml(), 'utf8').toString('base64url');
}
