import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@muster/host';
import { policyProblems, policySignatureValid, SignedPolicy } from '@muster/proto';
import { Value } from '@sinclair/typebox/value';

/**
 * The command policy this agent holds: only one signed by the fleet root it pinned at
 * enrollment, and only ever replaced by a higher version. Kept on disk, so a restart (or a
 * server offering an older policy) never rolls it back.
 */
export class HeldPolicy {
  private constructor(
    private readonly path: string,
    private readonly rootKey: string,
    private signed: SignedPolicy | undefined,
  ) {}

  static async load(dataDir: string, rootKey: string): Promise<HeldPolicy> {
    const path = join(dataDir, 'policy.json');
    let signed: SignedPolicy | undefined;
    try {
      const parsed = JSON.parse(await readFile(path, 'utf8')) as unknown;
      // Checked again on every start: a file edited on the host is not a policy.
      if (Value.Check(SignedPolicy, parsed) && policySignatureValid(parsed.policy, parsed.signature, rootKey))
        signed = parsed;
    } catch {
      signed = undefined;
    }
    return new HeldPolicy(path, rootKey, signed);
  }

  get current(): SignedPolicy | undefined {
    return this.signed;
  }

  get version(): number {
    return this.signed?.policy.version ?? 0;
  }

  /**
   * Takes a policy if the fleet root signed it and it is newer than the one held. Returns
   * undefined when taken (or the same version again), else why it was refused.
   */
  async offer(candidate: unknown): Promise<string | undefined> {
    if (!Value.Check(SignedPolicy, candidate)) return 'the policy is malformed';
    if (!policySignatureValid(candidate.policy, candidate.signature, this.rootKey))
      return 'the policy is not signed by the pinned fleet root key';
    if (candidate.policy.version === this.version && candidate.signature === this.signed?.signature)
      return undefined;
    if (candidate.policy.version <= this.version)
      return `policy version ${candidate.policy.version} is not newer than version ${this.version} held`;
    const problems = policyProblems(candidate.policy);
    if (problems.length > 0) return `the policy is unusable: ${problems.join('; ')}`;
    await writeFileAtomic(this.path, `${JSON.stringify(candidate)}\n`, 0o644);
    this.signed = candidate;
    return undefined;
  }
}
