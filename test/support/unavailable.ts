/**
 * test/support/unavailable — the one rule for a test whose peer or privilege
 * is missing: on a laptop it is skipped with the reason; under
 * HALCYON_REQUIRE_INTEROP=1 (CI installs every peer and runs as root) it fails,
 * because a missing peer there is a broken CI, not a reason to pass.
 *
 * Does not probe anything: callers say what is missing (postfix, dovecot,
 * postgres and halcyon.ts each know how to look for their own peer).
 */

export interface Skippable {
  skip(message?: string): void;
}

/** True when `why` is undefined (nothing missing); otherwise skips `t` or throws in CI. */
export function available(t: Skippable, why: string | undefined): boolean {
  if (why === undefined) return true;
  if (process.env.HALCYON_REQUIRE_INTEROP === '1') throw new Error(`${why}, and HALCYON_REQUIRE_INTEROP=1`);
  t.skip(why);
  return false;
}

/** True when running as root; otherwise skips (or fails in CI) saying what root is needed for. */
export function requireRoot(t: Skippable, forWhat: string): boolean {
  return available(t, process.getuid?.() === 0 ? undefined : `not root: ${forWhat}`);
}
