import { AGENT_COMMAND_SETTINGS } from '@muster/agent';
import { type SettingSpec, settingHelp } from '@muster/host';
import { SERVER_COMMAND_SETTINGS } from '@muster/server';
import { ADMIN_SETTINGS } from './client.js';

const GROUPS: Record<string, readonly SettingSpec[]> = {
  server: SERVER_COMMAND_SETTINGS,
  agent: AGENT_COMMAND_SETTINGS,
  admin: ADMIN_SETTINGS,
};

/** A Markdown table of one group of settings, as README.md shows it. */
export function settingsMarkdown(group: string): string {
  const specs = GROUPS[group];
  if (!specs) throw new Error(`no settings group "${group}"`);
  const rows = specs.map((s) => {
    const flag = `\`--${s.flag}${s.kind === 'boolean' ? '' : ` ${s.value ?? 'VALUE'}`}\``;
    const env = s.env ? `\`${s.secret ? `${s.env}_FILE` : s.env}\`` : '';
    return `| ${flag} | ${env} | ${settingHelp(s).replaceAll('|', '\\|').replaceAll('<', '&lt;')} |`;
  });
  return ['| flag | environment | meaning |', '|---|---|---|', ...rows].join('\n');
}
