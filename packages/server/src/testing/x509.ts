// Tests craft hostile CSRs and rogue CAs with a general-purpose X.509 library, independent of
// the native code the server issues and verifies with (@muster/host's x509.ts). It is a
// development dependency only: nothing Muster runs in production loads it.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
