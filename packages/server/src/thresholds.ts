/* The node-health limits: read by config.ts from `--thresholds`, applied by features/nodes/status.ts. */

/** Where disk, memory and load become a reason, per profile (`--thresholds FILE`). */
export interface Thresholds {
  diskAttentionPct: number;
  diskCriticalPct: number;
  memoryAttentionPct: number;
  memoryCriticalPct: number;
  /** Load average per CPU. */
  loadAttentionPerCpu: number;
  loadCriticalPerCpu: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = Object.freeze({
  diskAttentionPct: 90,
  diskCriticalPct: 97,
  memoryAttentionPct: 90,
  memoryCriticalPct: 97,
  loadAttentionPerCpu: 2,
  loadCriticalPerCpu: 4,
});
