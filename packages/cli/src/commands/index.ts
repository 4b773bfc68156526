import type { Command } from '../command.js';
import { agentCommand } from './agent.js';
import { agentRequest } from './agent-request.js';
import { apitokenCreate, apitokenList, apitokenRevoke } from './apitokens.js';
import { commandsApprove } from './approve.js';
import { backupCommand, restoreCommand } from './backup.js';
import { benchCommand } from './bench.js';
import { caFinish, caRotate, caStatus } from './ca.js';
import { commandsList, commandsShow } from './commands.js';
import { consoleLink } from './console.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { eventsCommand } from './events.js';
import { jobsPlan } from './jobs.js';
import { jobsExplain, jobsList, jobsRun, jobsShow, jobsStop } from './jobs-verbs.js';
import {
  ledgerCheckpoint,
  ledgerExport,
  ledgerKey,
  ledgerList,
  ledgerProof,
  ledgerVerify,
} from './ledger.js';
import { loginCommand } from './login.js';
import { userLoginCode } from './login-code.js';
import { nodesApprove, nodesPending, nodesReject, nodesSign } from './node-requests.js';
import { nodesDecommission, nodesList, nodesRotate, nodesShow } from './nodes.js';
import { operatorAdd, operatorKeygen, operatorList } from './operators.js';
import { policyEdit, policyPush, policyShow, policySign } from './policy.js';
import { roleApply, roleList, roleShow } from './roles.js';
import { rootInit } from './root.js';
import { runCommand } from './run.js';
import { serverCommand } from './server.js';
import { tokenCreate, tokenList, tokenRevoke } from './tokens.js';
import {
  userAdd,
  userDisable,
  userEnable,
  userLink,
  userList,
  userRevokeCerts,
  userSetEmail,
  userSetRole,
  userShow,
} from './users.js';

/** Every verb of `muster`, in the order `--help` lists them. */
export const COMMANDS: readonly Command[] = [
  serverCommand,
  agentCommand,
  demoCommand,
  tokenCreate,
  tokenList,
  tokenRevoke,
  nodesList,
  nodesShow,
  nodesDecommission,
  nodesRotate,
  eventsCommand,
  consoleLink,
  caStatus,
  caRotate,
  caFinish,
  rootInit,
  policyShow,
  policyEdit,
  policySign,
  policyPush,
  operatorKeygen,
  operatorAdd,
  operatorList,
  runCommand,
  commandsList,
  commandsShow,
  commandsApprove,
  jobsPlan,
  jobsRun,
  jobsList,
  jobsShow,
  jobsExplain,
  jobsStop,
  ledgerList,
  ledgerKey,
  ledgerCheckpoint,
  ledgerProof,
  ledgerExport,
  ledgerVerify,
  userAdd,
  userList,
  userShow,
  userSetRole,
  userDisable,
  userEnable,
  userSetEmail,
  userLink,
  userRevokeCerts,
  roleApply,
  roleList,
  roleShow,
  apitokenCreate,
  apitokenList,
  apitokenRevoke,
  userLoginCode,
  loginCommand,
  doctorCommand,
  benchCommand,
  agentRequest,
  nodesPending,
  nodesApprove,
  nodesReject,
  nodesSign,
  backupCommand,
  restoreCommand,
];
