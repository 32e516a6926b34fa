/**
 * bench/dkim — what DKIM signing costs at acceptance: smtp-source → Halcyon
 * (→ smtp-sink), 1 KiB messages from 20 sessions, accepted msgs/s (smtp-source
 * exits after its last 250) unsigned, signed with an RSA-2048 key and signed
 * with an Ed25519 key (smtp-source's From: is example.test, which the key
 * covers). Halcyon signs in the intake, before the queue write, so the figure
 * includes the signature. The three variants alternate in each run so a warm
 * or a cold machine favours none. Halcyon only: Postfix has no signer of its
 * own to set beside it.
 *
 * Returns rows for bench/table; measures, asserts nothing. `npm run bench`
 * runs it after the throughput rows; `BENCH_ONLY=dkim` runs it alone.
 */
import { startHalcyon } from './halcyon.js';
import { runSource, startSink } from './sink.js';
import type { Row, Runs } from './table.js';

export type SigningVariant = 'unsigned' | 'rsa-sha256' | 'ed25519-sha256';
const VARIANTS: readonly SigningVariant[] = ['unsigned', 'rsa-sha256', 'ed25519-sha256'];
const LABEL: Readonly<Record<SigningVariant, string>> = { unsigned: 'unsigned', 'rsa-sha256': 'DKIM rsa-2048', 'ed25519-sha256': 'DKIM ed25519' };

async function acceptedRate(variant: SigningVariant, messages: number, budgetMs: number): Promise<number | undefined> {
  const sink = await startSink();
  try {
    const h = await startHalcyon({ routeTo: sink.port, ...(variant === 'unsigned' ? {} : { dkim: variant }) });
    try {
      const src = await runSource(h.port, { sessions: 20, messages, size: 1024, recipients: 1 }, budgetMs);
      const rate = src.finished ? messages / src.seconds : undefined;
      console.error(`  halcyon  ${LABEL[variant].padEnd(14)} accepted ${rate?.toFixed(0) ?? '—'} msgs/s (${src.seconds.toFixed(1)} s)`);
      return rate;
    } finally {
      await h.stop();
    }
  } finally {
    await sink.stop();
  }
}

export async function dkimRows(messages: number, runs: number, budgetMs: number): Promise<Row[]> {
  console.error(`DKIM signing at acceptance (smtp-source -s 20, ${messages} × 1 KiB), ${runs} run(s) each`);
  const got = new Map<SigningVariant, (number | undefined)[]>(VARIANTS.map((v) => [v, []]));
  for (let run = 0; run < runs; run++) {
    // Rotate the order each run.
    const order = VARIANTS.map((_, i) => VARIANTS[(i + run) % VARIANTS.length]!);
    for (const v of order) got.get(v)!.push(await acceptedRate(v, messages, budgetMs));
  }
  const label = `${messages.toLocaleString('en-US')} × 1 KiB`;
  return VARIANTS.map((v) => ({
    what: `Inbound accepted, ${label}, ${LABEL[v]}`, unit: 'msgs/s', halcyon: got.get(v)! as Runs, postfix: [], ratio: 'none' as const,
    note: v === 'unsigned' ? 'Halcyon only; the rows below sign every message in the intake, before the queue write' : `Halcyon only; beside the unsigned row of the same runs`,
  }));
}
