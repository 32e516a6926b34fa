/**
 * tlsrpt/mail — pure: the message that carries a gzipped TLS-RPT report by
 * mail (RFC 8460 §5.3): a multipart/report with report-type "tlsrpt", a
 * short human part, and the report as an `application/tlsrpt+gzip`
 * attachment named by §5.1; `TLS-Report-Domain` and `TLS-Report-Submitter`
 * header fields and the §5.3 subject. CRLF lines, ready for intake (which
 * signs it with DKIM when the From domain has a key).
 *
 * Does not compress or send (tlsrpt/sender).
 */
import { randomBytes } from 'node:crypto';

export interface ReportMail {
  readonly from: string;
  readonly to: readonly string[];
  readonly policyDomain: string;
  readonly submitter: string;
  readonly reportId: string;
  readonly fileName: string;
  readonly gzipped: Buffer;
  readonly now: number;
}

export function reportMessage(m: ReportMail): Buffer {
  const boundary = `tlsrpt-${randomBytes(12).toString('hex')}`;
  const b64 = m.gzipped.toString('base64').replace(/.{1,76}/g, '$&\r\n');
  const lines = [
    `From: <${m.from}>`,
    `To: ${m.to.map((a) => `<${a}>`).join(', ')}`,
    `Subject: Report Domain: ${m.policyDomain} Submitter: ${m.submitter} Report-ID: <${m.reportId}>`,
    `Date: ${new Date(m.now).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${randomBytes(12).toString('hex')}.tlsrpt@${m.submitter}>`,
    `TLS-Report-Domain: ${m.policyDomain}`,
    `TLS-Report-Submitter: ${m.submitter}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type="tlsrpt"; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is an aggregate TLS report (RFC 8460) from ${m.submitter} for ${m.policyDomain}.`,
    '',
    `--${boundary}`,
    'Content-Type: application/tlsrpt+gzip',
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${m.fileName}"`,
    '',
    b64.trimEnd(),
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}
