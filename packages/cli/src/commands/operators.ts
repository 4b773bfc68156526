import { UsageError } from '@muster/host';
import { OPERATOR_NAME_PATTERN, type OperatorView, USER_NAME_PATTERN } from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { defaultOperatorKey, makeKeyFile, readPublicKey } from '../keys.js';
import { printJson, safe, table } from '../output.js';

export const operatorKeygen: Command = {
  path: ['operator', 'keygen'],
  summary: "make an operator's signing key on this machine (it never leaves it)",
  details:
    'Writes the private key (mode 0600) and FILE.pub with the public key to give to\n' +
    '`muster operator add`. `muster run` signs with it.\n\nExample:\n  muster operator keygen\n  muster operator add alice --pubkey ~/.config/muster/operator.key.pub --profiles web,db',
  settings: [
    {
      flag: 'out',
      kind: 'string',
      value: 'FILE',
      help: 'where to write the key (default ~/.config/muster/operator.key)',
    },
    { flag: 'json', kind: 'boolean', help: 'print JSON only' },
  ],
  async run({ values, env }) {
    const out = (values.out as string | undefined) ?? defaultOperatorKey(env);
    const publicKey = await makeKeyFile(out);
    if (values.json) printJson({ privateKeyFile: out, publicKeyFile: `${out}.pub`, publicKey });
    else process.stdout.write(`Operator key written to ${out}.\nPublic key: ${publicKey}\n`);
    return 0;
  },
};

export const operatorAdd: Command = {
  path: ['operator', 'add'],
  args: 'NAME',
  summary: "register an operator's public key and the profiles it may run commands on",
  details:
    'The operator can run commands once a policy signed by the fleet root lists it:\n' +
    '`muster policy edit` adds registered operators to the next version.\n\n' +
    "--profiles is required: name the profiles, or give '*' (quoted) for every profile, so that\n" +
    'all is never the result of leaving a flag out.\n\n' +
    'The key belongs to a user (--user; without it, the user of the same name, if there is one):\n' +
    "a command it signs is accepted only if that user's role may create commands on every node\n" +
    'it targets, and an approval only if it may approve them. A key that belongs to no user\n' +
    '(registered before keys belonged to users) acts for whoever sends its signature.\n\n' +
    "Example:\n  muster operator add alice --pubkey ed25519:… --profiles web,db\n  muster operator add ci-key --user ci --pubkey ci.pub --profiles web\n  muster operator add root --pubkey root.pub --profiles '*'",
  settings: [
    {
      flag: 'pubkey',
      kind: 'string',
      value: 'KEY|FILE',
      help: 'the public key (ed25519:…) or a file holding it',
    },
    {
      flag: 'profiles',
      kind: 'string',
      value: 'A,B',
      help: "required: the profiles it may run commands on (web,db), or '*' for every profile",
    },
    {
      flag: 'user',
      kind: 'string',
      value: 'USER',
      help: 'the user whose key this is (default: the user named like the operator, if any)',
    },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals }) {
    const [name, extra] = positionals;
    if (!name || extra !== undefined) throw new UsageError('give exactly one operator NAME');
    if (!new RegExp(OPERATOR_NAME_PATTERN).test(name))
      throw new UsageError(`"${name}" is not an operator name (lowercase letters, digits, . _ @ -)`);
    if (!values.pubkey) throw new UsageError('--pubkey is required');
    const publicKey = readPublicKey(values.pubkey as string);
    const profiles = ((values.profiles as string | undefined) ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    if (profiles.length === 0)
      throw new UsageError(
        `--profiles is required: the profiles ${name} may run commands on (--profiles web,db), or --profiles '*' for every profile`,
      );
    const user = values.user as string | undefined;
    if (user !== undefined && !new RegExp(USER_NAME_PATTERN).test(user))
      throw new UsageError(`--user: "${user}" is not a user name`);
    const added = await adminClient(values).call<OperatorView>('POST', '/v1/operators', {
      name,
      publicKey,
      profiles,
      ...(user !== undefined ? { user } : {}),
    });
    if (values.json) printJson(added);
    else
      process.stdout.write(
        `Operator ${added.name} registered for profiles ${added.profiles.join(', ')}; ${added.user ? `its key is user ${safe(added.user)}'s` : 'its key belongs to no user (it acts for whoever sends its signatures)'}.\n` +
          'It can run commands once a signed policy lists it: muster policy edit\n',
      );
    return 0;
  },
};

export const operatorList: Command = {
  path: ['operator', 'ls'],
  summary: 'list registered operators and whether the policy in force lists them',
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const { items } = await adminClient(values).call<{ items: OperatorView[] }>('GET', '/v1/operators');
    if (values.json) {
      printJson({ items });
      return 0;
    }
    if (items.length === 0) {
      console.log('no operators yet: muster operator keygen, then muster operator add NAME --pubkey …');
      return 0;
    }
    console.log(
      table(
        ['NAME', 'USER', 'PROFILES', 'IN POLICY', 'PUBLIC KEY'],
        items.map((op) => [
          safe(op.name),
          op.user ? safe(op.user) : '-',
          op.profiles.join(','),
          op.inPolicy ? 'yes' : 'no',
          op.publicKey,
        ]),
      ),
    );
    return 0;
  },
};
