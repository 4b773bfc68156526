import { backupUnderLoad } from './backup-scenario.js';

backupUnderLoad('sqlite');
