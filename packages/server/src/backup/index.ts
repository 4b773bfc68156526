export { type BackupOptions, BackupRefusedError, type BackupResult, takeBackup } from './backup.js';
export { type BackupManifest, DamagedBackupError } from './format.js';
export { type RestoreOptions, RestoreRefusedError, type RestoreResult, restoreBackup } from './restore.js';
export { WrongPassphraseError } from './seal.js';
