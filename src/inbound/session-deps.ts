/**
 * inbound/session-deps — what an inbound SMTP session is given: its
 * listener's settings (SessionSettings) and the node's services it asks
 * (SessionDeps: intake, users, relay and rate decisions, the queue's health).
 * Types only; inbound/session runs the conversation, app/inbound and
 * app/session-workers build these for the main thread and for each worker.
 */
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import type { Intake } from '../intake/intake.js';
import type { UserDirectory } from './auth.js';
import type { AuthLimiter } from './auth-throttle.js';
import type { AuthChecker } from './authcheck.js';
import type { DmarcMode } from './dmarc-policy.js';
import type { RecipientDirectory } from './envelope.js';
import type { RecipientMemory } from './recipient-memory.js';

export interface SessionSettings {
  readonly hostname: string;
  /** Verify SPF/DKIM/DMARC/ARC of mail from outside (MX listener only). */
  readonly verify: boolean;
  readonly dmarc: DmarcMode;
  readonly kind: 'smtp' | 'submission';
  readonly maxMessageSize: number;
  readonly maxRecipients: number;
  readonly maxErrors: number;
  readonly bareNewline: 'normalize' | 'reject';
  readonly commandTimeoutMs: number;
  readonly dataTimeoutMs: number;
  readonly maxReceivedHeaders: number;
}

/** `suppressed` and `verifyRecipient` (inbound/recipient-memory) are asked at RCPT for relayed addresses. */
export interface SessionDeps extends RecipientMemory {
  readonly settings: SessionSettings;
  readonly intake: Intake;
  readonly authChecker?: AuthChecker;
  readonly users: UserDirectory;
  readonly directory: RecipientDirectory;
  readonly mayRelayFrom: (ip: string) => boolean;
  readonly tlsContext?: tls.SecureContext;
  readonly log: Logger;
  readonly isDraining: () => boolean;
  readonly onMessage?: (event: { id: string; size: number; recipients: number; tenant?: string }) => void;
  readonly onReject?: (reason: string) => void;
  /** Whether the queue has room for a new message of this declared size (absent: always). */
  readonly acceptsMail?: (size: number | undefined) => boolean;
  /** Why the queue cannot take mail now (failed or unreachable: queue/health), as the error code the reply comes from. */
  readonly queueTrouble?: () => ErrorCode | undefined;
  /** Per-IP AUTH failure delay and lockout, shared by every session (absent: no throttling). */
  readonly authThrottle?: AuthLimiter;
  /**
   * Per-client rates (inbound/anvil): true when this MAIL FROM (per IP) / RCPT TO (per AUTH user) is over its limit.
   * A promise when the node's counts live on another thread (a session worker asks the main thread: app/session-workers).
   */
  readonly rate?: { readonly messageOver: (ip: string) => boolean | Promise<boolean>; readonly recipientOver: (user: string) => boolean | Promise<boolean> };
  /** The MX listener's DNSBL check (inbound/dnsbl): started once per connection, awaited at RCPT. */
  readonly dnsbl?: (ip: string) => Promise<{ readonly zone: string; readonly answer: string } | undefined>;
}
