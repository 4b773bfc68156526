import type { CaStatus } from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { printJson, safe } from '../output.js';

export const caStatus: Command = {
  path: ['ca', 'status'],
  summary: 'show the fleet CA: its expiry (warned about a year ahead) and how many nodes it issued',
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const status = await adminClient(values).call<CaStatus>('GET', '/v1/ca');
    if (values.json) {
      printJson(status);
      return 0;
    }
    const { ca, nodes } = status;
    console.log(
      [
        `fleet CA    ${safe(ca.subject)}`,
        `  serial    ${ca.serial}`,
        `  pin       ${ca.pin}`,
        `  valid     ${ca.notBefore} to ${ca.notAfter}`,
        `  nodes     ${nodes.active} active: ${nodes.onThisCa} on this CA, ${nodes.onOtherCa} on another root`,
        ...status.warnings.map((w) => `WARNING: ${safe(w)}`),
      ].join('\n'),
    );
    return 0;
  },
};
