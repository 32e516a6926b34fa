/**
 * http/actor — who an admin action is taken by (an API token's name, or the
 * Unix user running the CLI), and that Unix user with the one sudo says it
 * acts for. http/audit writes the line; this file only names the actor, so
 * the CLI can send its user to the server without loading the logger.
 */
import { userInfo } from 'node:os';

/** Who an action is taken by. */
export interface Actor {
  readonly who: string;
  /** 'api': through the admin API of a running server; 'cli': the CLI on the data_dir itself. */
  readonly via: 'api' | 'cli';
  /** The API client's address. */
  readonly ip?: string;
  /** The user the API client says it runs as (the CLI sends it): a claim, not an authentication. */
  readonly user?: string;
}

/** The Unix user running this process (the CLI's `who` on a stopped server), with the one sudo says it acts for. */
export function unixActor(): Actor {
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = `uid:${process.getuid?.() ?? '?'}`;
  }
  const sudo = process.env.SUDO_USER;
  return { who: name, via: 'cli', ...(sudo && sudo !== name ? { user: sudo } : {}) };
}
