/**
 * Waits for replica B to see what replica A changed: checks every 50 ms for at most a second
 * (what CONTRACT section 6 promises), and fails saying what was not seen. Nothing here decides
 * on a timing: a change that crosses by NOTIFY or by reading the store is seen long before.
 */
export async function seenWithinASecond(
  what: string,
  check: () => boolean | Promise<boolean>,
): Promise<void> {
  for (let waited = 0; ; waited += 50) {
    if (await check()) return;
    if (waited >= 1_000) throw new Error(`the other replica did not see ${what} within a second`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
