import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createToken,
  dialects,
  postEnroll,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { testCsr } from '../../testing/pki.js';
import { x509 } from '../../testing/x509.js';

/** A CSR that asks for everything a node must not get. */
async function greedyCsr(): Promise<string> {
  const pem = await testCsr({
    name: 'CN=muster-server,O=Muster',
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'dns', value: 'muster.example' },
        { type: 'ip', value: '127.0.0.1' },
        { type: 'url', value: 'spiffe://muster.local/node/00000000-0000-4000-8000-000000000000' },
      ]),
      new x509.BasicConstraintsExtension(true, 5, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.codeSigning,
      ]),
    ],
  });
  const csr = new x509.Pkcs10CertificateRequest(pem);
  assert.equal(await csr.verify(), true);
  assert.equal(csr.extensions.length, 4, 'the CSR really asks for all of it');
  return pem;
}

for (const dialect of dialects()) {
  describe(`node certificates come from policy alone (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    test('a CSR asking for another CN, SANs, CA:true and other key usages gets none of them', async () => {
      const issuedAt = t.clock.now();
      const res = await postEnroll(t, { token: await createToken(t), name: 'app-1', csr: await greedyCsr() });
      assert.equal(res.status, 201, res.body);
      const cert = new x509.X509Certificate(res.json.certificate);

      assert.equal(cert.subject, 'CN=app-1');
      const fleetCa = new x509.X509Certificate(t.server.identity.ca.pem);
      assert.equal(cert.issuer, fleetCa.subject);
      assert.equal(await cert.verify({ publicKey: fleetCa.publicKey }), true);

      const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
      assert.deepEqual(
        san?.names.toJSON(),
        [{ type: 'url', value: `spiffe://muster.local/node/${res.json.nodeId}` }],
        'the only SAN is the node SPIFFE ID',
      );
      const basic = cert.getExtension(x509.BasicConstraintsExtension);
      assert.equal(basic?.ca, false);
      assert.equal(basic?.critical, true);
      const usage = cert.getExtension(x509.KeyUsagesExtension);
      assert.equal(usage?.usages, x509.KeyUsageFlags.digitalSignature);
      const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
      assert.deepEqual([...(eku?.usages ?? [])], [x509.ExtendedKeyUsage.clientAuth]);
      const known = new Set<string>([
        '2.5.29.19', // basic constraints
        '2.5.29.15', // key usage
        '2.5.29.37', // extended key usage
        '2.5.29.17', // subject alternative name
        '2.5.29.35', // authority key identifier
        '2.5.29.14', // subject key identifier
      ]);
      for (const ext of cert.extensions) assert.ok(known.has(ext.type), `unexpected extension ${ext.type}`);

      // Serials are random and at least 128 bits (16 bytes) long, positive in DER.
      assert.ok(cert.serialNumber.length >= 32, `serial ${cert.serialNumber} is shorter than 128 bits`);
      assert.ok(Number.parseInt(cert.serialNumber.slice(0, 2), 16) < 0x80);

      // notBefore is five minutes back (certificates carry whole seconds), lifetime 24 h.
      const fiveMinutesBack = issuedAt - 5 * 60_000;
      assert.ok(Math.abs(cert.notBefore.getTime() - fiveMinutesBack) < 1000, cert.notBefore.toISOString());
      assert.ok(Math.abs(cert.notAfter.getTime() - (issuedAt + 86_400_000)) < 1000);
      assert.equal(res.json.notAfter, new Date(issuedAt + 86_400_000).toISOString());
    });

    test('serials differ from certificate to certificate', async () => {
      const serials = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const res = await postEnroll(t, { token: await createToken(t) });
        assert.equal(res.status, 201, res.body);
        serials.add(new x509.X509Certificate(res.json.certificate).serialNumber);
      }
      assert.equal(serials.size, 5);
    });
  });
}
