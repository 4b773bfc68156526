import type { CaStatus } from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { printJson, safe } from '../output.js';

const PROCEDURE = [
  'Rotating the fleet CA takes two steps, and no host needs to be touched:',
  '  1. muster ca rotate   a new root issues every certificate from now on; agents trust both',
  '                        roots and renew onto the new one within a few heartbeats',
  '  2. muster ca finish   once `muster ca status` shows no node on the old root, retire it',
].join('\n');

export const caStatus: Command = {
  path: ['ca', 'status'],
  summary: 'show the fleet CA: its expiry (warned about a year ahead), a rotation, and who it issued',
  details: `During a rotation it also shows the root being retired and how many active nodes\nstill hold certificates from it.\n\n${PROCEDURE}`,
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const status = await adminClient(values).call<CaStatus>('GET', '/v1/ca');
    if (values.json) printJson(status);
    else console.log(describeStatus(status));
    return 0;
  },
};

export const caRotate: Command = {
  path: ['ca', 'rotate'],
  summary: 'start a rotation of the fleet CA: a new root issues, agents trust both until finish',
  details: `${PROCEDURE}\n\nUntil the finish, join lines keep the old root's --ca-pin and the server keeps its\ncertificate from the old root, so agents that have not renewed yet still connect.`,
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const status = await adminClient(values).call<CaStatus>('POST', '/v1/ca/rotate', {});
    if (values.json) {
      printJson(status);
      return 0;
    }
    const waiting = status.rotation?.nodesOnRetiring ?? 0;
    console.log(
      [
        `Rotation started: the new fleet CA ${safe(status.ca.subject)} (pin ${status.ca.pin}) issues every certificate from now on.`,
        `${waiting} active ${waiting === 1 ? 'node is' : 'nodes are'} on the old root and will renew onto the new one within a few heartbeats.`,
        'Watch it with "muster ca status"; when none is left, run "muster ca finish".',
      ].join('\n'),
    );
    return 0;
  },
};

export const caFinish: Command = {
  path: ['ca', 'finish'],
  summary: 'retire the old fleet CA once no active node is on it (or anyway, with --force)',
  details: `${PROCEDURE}\n\nAfter the finish the old root is no longer trusted, the server presents a certificate from\nthe new root, and join lines carry the new root's --ca-pin (make new ones). Without\n--force it refuses while any active node still holds a certificate from the old root.\n\nExample:\n  muster ca status && muster ca finish`,
  settings: [
    {
      flag: 'force',
      kind: 'boolean',
      help: 'retire the old root even though nodes are on it; they cannot connect until enrolled again',
    },
    ...ADMIN_SETTINGS,
  ],
  async run({ values }) {
    const status = await adminClient(values).call<CaStatus>('POST', '/v1/ca/finish', {
      force: values.force === true,
    });
    if (values.json) {
      printJson(status);
      return 0;
    }
    console.log(
      `Rotation finished: the old root is retired; ${safe(status.ca.subject)} is the fleet CA and join lines now carry --ca-pin ${status.ca.pin}.`,
    );
    return 0;
  },
};

function describeStatus(status: CaStatus): string {
  const { ca, nodes, rotation } = status;
  const lines = [
    `fleet CA    ${safe(ca.subject)}`,
    `  serial    ${ca.serial}`,
    `  pin       ${ca.pin}`,
    `  valid     ${ca.notBefore} to ${ca.notAfter}`,
    `  nodes     ${nodes.active} active: ${nodes.onThisCa} on this CA, ${nodes.onOtherCa} on another root`,
  ];
  if (rotation) {
    lines.push(
      `rotation    in progress since ${rotation.startedAt}`,
      `  retiring  ${safe(rotation.retiring.subject)}`,
      `  serial    ${rotation.retiring.serial}`,
      `  pin       ${rotation.retiring.pin} (join lines carry it until the finish)`,
      `  waiting   ${rotation.nodesOnRetiring} active ${rotation.nodesOnRetiring === 1 ? 'node' : 'nodes'} still on the old root`,
      rotation.nodesOnRetiring === 0
        ? '  next      muster ca finish'
        : '  next      wait for them to renew, then muster ca finish',
    );
  }
  lines.push(...status.warnings.map((w) => `WARNING: ${safe(w)}`));
  return lines.join('\n');
}
