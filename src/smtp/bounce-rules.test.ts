/**
 * smtp/bounce-rules tests — the shipped rule file read against real replies:
 * each row is a reply as a provider publishes it (the page is cited on its
 * group; addresses and IPs replaced by documentation ones), with the phase it
 * answers and the class an operator should see. Plus the parser's refusals
 * and an operator file winning over the shipped rules.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadBounceClassifier } from '../config/bounce-rules-file.js';
import { splitEnhanced } from './reply.js';
import { type BounceClass, SUPPRESSING_CLASSES } from './bounce-class.js';
import { parseBounceRules } from './bounce-rules.js';

/** [the reply as sent ("550 5.1.1 text"), the command it answered, the class]. */
type Row = readonly [string, string, BounceClass];

const GMAIL = 'https://support.google.com/a/answer/3726730';
const YAHOO = 'https://senders.yahooinc.com/smtp-error-codes';
const MICROSOFT = 'https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online';
const OUTLOOK = 'https://sendersupport.olc.protection.outlook.com/pm/troubleshooting.aspx';
const APPLE = 'https://support.apple.com/en-us/102322';
const RFC3463 = 'https://www.iana.org/assignments/smtp-enhanced-status-codes/smtp-enhanced-status-codes.xhtml';

export const TABLE: Readonly<Record<string, readonly Row[]>> = {
  [GMAIL]: [
    ['550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient\'s email address for typos or unnecessary spaces.', 'RCPT TO', 'InvalidRecipient'],
    ['550 5.2.1 The email account that you tried to reach is disabled.', 'RCPT TO', 'InactiveMailbox'],
    ['550 5.2.1 The email account that you tried to reach is inactive.', 'RCPT TO', 'InactiveMailbox'],
    ['550 5.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.', 'RCPT TO', 'PolicyRelated'],
    ['450 4.2.1 The user you are trying to contact is receiving mail too quickly. Please resend your message at a later time.', 'RCPT TO', 'PolicyRelated'],
    ['450 4.2.1 Peak SMTP relay limit exceeded for customer. This is a temporary error.', 'RCPT TO', 'PolicyRelated'],
    ['452 4.2.2 The email account that you tried to reach is over quota. Please direct the recipient to Clear Google Drive space & increase storage.', 'RCPT TO', 'QuotaIssues'],
    ['552 5.2.2 The recipient\'s inbox is out of storage space and inactive.', 'RCPT TO', 'QuotaIssues'],
    ['552 5.2.3 Your message exceeded Google\'s message size limits.', 'end of DATA', 'QuotaIssues'],
    ['553 5.1.2 We weren\'t able to find the recipient domain. Please check for any spelling errors, and make sure you didn\'t enter any spaces, periods, or other punctuation after the recipient\'s email address.', 'RCPT TO', 'BadDomain'],
    ['421 4.3.0 Temporary System Problem. Try again later', 'MAIL FROM', 'TransientFailure'],
    ['421 4.4.5 Server busy, try again later.', 'greeting', 'TransientFailure'],
    ['421 4.7.0 IP not in whitelist for RCPT domain, closing connection.', 'RCPT TO', 'PolicyRelated'],
    ['421 4.7.0 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily blocked.', 'MAIL FROM', 'SpamBlock'],
    ['421 4.7.0 TLS required for RCPT domain, closing connection.', 'RCPT TO', 'AuthenticationFailed'],
    ['421 4.7.0 This message is suspicious due to the very low reputation of the sending IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.', 'end of DATA', 'SpamBlock'],
    ['421 4.7.28 Gmail has detected an unusual rate of mail originating from your IP address 192.0.2.25. To protect our users from spam, mail has been temporarily rate limited.', 'end of DATA', 'SpamBlock'],
    ['451 4.3.0 Mail server temporarily rejected message.', 'end of DATA', 'TransientFailure'],
    ['451 4.4.2 Timeout - closing connection.', 'DATA', 'BadConnection'],
    ['451 4.5.0 SMTP protocol violation, see RFC 2821.', 'DATA', 'ProtocolErrors'],
    ['452 4.5.3 Your message has too many recipients.', 'RCPT TO', 'TooManyRecipients'],
    ['454 4.7.0 Cannot authenticate due to a temporary system problem. Try again later.', 'AUTH', 'AuthenticationFailed'],
    ['501 5.5.4 HELO/EHLO argument is invalid.', 'EHLO', 'ProtocolErrors'],
    ['503 5.5.1 Bad sequence of commands.', 'RCPT TO', 'ProtocolErrors'],
    ['530 5.7.0 Authentication Required.', 'MAIL FROM', 'AuthenticationFailed'],
    ['535 5.7.8 Username and Password not accepted.', 'AUTH', 'AuthenticationFailed'],
    ['550 5.4.5 Daily sending quota exceeded.', 'MAIL FROM', 'PolicyRelated'],
    ['550 5.7.0 Mail relay denied 192.0.2.25. Invalid credentials for relay for one of the domains in: example.com (as obtained from HELO and MAIL FROM).', 'MAIL FROM', 'RelayDenied'],
    ['550 5.7.1 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been blocked.', 'end of DATA', 'SpamBlock'],
    ['550 5.7.1 Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.', 'end of DATA', 'SpamContent'],
    ['550 5.7.1 Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. To best protect our users from spam, the message has been blocked.', 'end of DATA', 'SpamBlock'],
    ['550 5.7.1 The IP you\'re using to send mail is not authorized to send email directly to our servers. Please use the SMTP relay at your service provider instead.', 'MAIL FROM', 'PolicyRelated'],
    ['550 5.7.1 The user or domain that you are sending to (or from) has a policy that prohibited the mail that you sent.', 'RCPT TO', 'PolicyRelated'],
    ['550 5.7.1 Messages missing a valid address in the From: header, or having no From: header, are not accepted.', 'end of DATA', 'ContentRelated'],
    ['550 5.7.1 This message does not meet IPv6 sending guidelines regarding PTR records and authentication.', 'end of DATA', 'AuthenticationFailed'],
    ['550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.', 'end of DATA', 'AuthenticationFailed'],
    ['550 5.7.26 Unauthenticated email from example.com is not accepted due to domain\'s DMARC policy.', 'end of DATA', 'AuthenticationFailed'],
    ['552 5.7.0 Our system detected an illegal attachment on your message.', 'end of DATA', 'ProhibitedAttachment'],
    ['554 5.6.0 Mail message is malformed. Not accepted.', 'end of DATA', 'ProtocolErrors'],
  ],
  [YAHOO]: [
    ['421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes', 'MAIL FROM', 'SpamBlock'],
    ['553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.25, because the ip is in Spamhaus\'s list; see https://postmaster.yahooinc.com/error-codes', 'greeting', 'SpamBlock'],
    ['553 5.7.2 [TSS09] All messages from 192.0.2.25 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes', 'MAIL FROM', 'SpamBlock'],
    ['554 delivery error: dd This user doesn\'t have a yahoo.com account (someone@yahoo.com) [0] - mta1234.mail.bf1.yahoo.com', 'end of DATA', 'InvalidRecipient'],
    ['552 1 Requested mail action aborted, mailbox not found', 'end of DATA', 'InvalidRecipient'],
    ['554 delivery error: dd someone@yahoo.com is no longer valid. [-5] - mta1234.mail.bf1.yahoo.com', 'end of DATA', 'InactiveMailbox'],
    ['554 30 Sorry, your message to someone@aol.com cannot be delivered. This mailbox is disabled (554.30).', 'end of DATA', 'InactiveMailbox'],
    ['554 5.7.9 Message not accepted for policy reasons. See https://postmaster.yahooinc.com/error-codes', 'end of DATA', 'PolicyRelated'],
    ['550 5.7.9 This mail has been blocked because the sender is unauthenticated. Yahoo requires all senders to authenticate with either SPF or DKIM.', 'end of DATA', 'AuthenticationFailed'],
    ['451 Message temporarily deferred due to unresolvable RFC.5321 from domain. See https://senders.yahooinc.com/error-codes#unresolvable-from-domain', 'MAIL FROM', 'InvalidSender'],
    ['450 User is receiving mail too quickly', 'RCPT TO', 'PolicyRelated'],
    ['421 Max message per connection reached, closing transmission channel', 'MAIL FROM', 'PolicyRelated'],
    ['550 relaying denied for <someone@yahoo.com>', 'RCPT TO', 'RelayDenied'],
    ['501 Syntax error in parameters or arguments', 'MAIL FROM', 'ProtocolErrors'],
  ],
  [MICROSOFT]: [
    ['550 5.1.1 RESOLVER.ADR.RecipNotFound; not found', 'RCPT TO', 'InvalidRecipient'],
    ['550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', 'RCPT TO', 'InvalidRecipient'],
    ['550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [BN8NAM12FT012.eop-nam12.prod.protection.outlook.com]', 'RCPT TO', 'InvalidRecipient'],
    ['550 5.4.1 Relay Access Denied', 'RCPT TO', 'RelayDenied'],
    ['550 5.7.1 Unable to relay', 'RCPT TO', 'RelayDenied'],
    ['550 5.7.1 Delivery not authorized, message refused', 'RCPT TO', 'PolicyRelated'],
    ['550 5.7.606 Access denied, banned sending IP [192.0.2.25]. To request removal from this list please visit https://sender.office.com/', 'MAIL FROM', 'SpamBlock'],
    ['550 5.7.511 Access denied, banned sender[192.0.2.25]. To request removal from this list please forward this message to delist@messaging.microsoft.com.', 'MAIL FROM', 'SpamBlock'],
    ['550 5.7.708 Access denied, traffic not accepted from this IP.', 'MAIL FROM', 'SpamBlock'],
    ['451 4.7.650 The mail server [192.0.2.25] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775)', 'MAIL FROM', 'SpamBlock'],
    ['451 4.7.500 Server busy. Please try again later from [192.0.2.25]. (AS761)', 'RCPT TO', 'TransientFailure'],
    ['550 5.7.509 Access denied, sending domain example.com does not pass DMARC verification and has a DMARC policy of reject.', 'end of DATA', 'AuthenticationFailed'],
    ['550 5.7.23 The message was rejected because of Sender Policy Framework violation', 'end of DATA', 'AuthenticationFailed'],
    ['550 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM', 'MAIL FROM', 'AuthenticationFailed'],
    ['550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains.', 'MAIL FROM', 'PolicyRelated'],
    ['550 5.7.124 Sender not in allowed-senders list', 'RCPT TO', 'PolicyRelated'],
    ['554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded', 'end of DATA', 'QuotaIssues'],
    ['550 5.2.121 Recipient\'s per hour message receive limit from specific sender exceeded.', 'RCPT TO', 'PolicyRelated'],
    ['554 5.4.14 Hop count exceeded - possible mail loop ATTR34', 'end of DATA', 'RoutingErrors'],
    ['550 5.4.300 Message expired', 'end of DATA', 'MessageExpired'],
    ['550 5.6.11 SMTPSEND.BareLinefeedsAreIllegal; message contains bare linefeeds, which cannot be sent via DATA', 'end of DATA', 'ProtocolErrors'],
    ['552 5.3.4 Message size exceeds fixed maximum message size', 'end of DATA', 'QuotaIssues'],
  ],
  [OUTLOOK]: [
    ['550 5.7.1 Unfortunately, messages from [192.0.2.25] weren\'t sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.', 'MAIL FROM', 'SpamBlock'],
    ['550 SC-001 (BAY004-MC1F49) Unfortunately, messages from 192.0.2.25 weren\'t sent. Please contact your Internet service provider since part of their network is on our block list. You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.', 'MAIL FROM', 'SpamBlock'],
    ['550 SC-004 Mail rejected by Outlook.com for policy reasons. A block has been placed against your IP address because we have received complaints concerning mail coming from that IP address.', 'MAIL FROM', 'SpamBlock'],
    ['550 OU-002 Mail rejected by Outlook.com for policy reasons. Reasons for rejection may be related to content with spam-like characteristics or IP/domain reputation problems.', 'end of DATA', 'SpamBlock'],
    ['550 DY-001 (SNT004-MC1F9) Unfortunately, messages from 192.0.2.25 weren\'t sent. Please contact your Internet service provider. You can tell them that Outlook.com does not relay dynamically-assigned IP ranges.', 'MAIL FROM', 'PolicyRelated'],
    ['421 RP-001 (BAY004-MC1F53) Unfortunately, some messages from 192.0.2.25 weren\'t sent. Please try again. We have limits for how many messages can be sent per hour and per day.', 'MAIL FROM', 'PolicyRelated'],
  ],
  [APPLE]: [
    ['550 5.1.1 <someone@icloud.com>: user does not exist', 'RCPT TO', 'InvalidRecipient'],
    ['550 5.1.1 <someone@icloud.com>: inactive email address', 'RCPT TO', 'InactiveMailbox'],
    ['550 5.1.1 unknown or illegal alias: someone@icloud.com', 'RCPT TO', 'InvalidRecipient'],
    ['550 5.1.6 recipient no longer on server: someone@icloud.com', 'RCPT TO', 'InactiveMailbox'],
    ['552 5.2.2 <someone@icloud.com>: user is over quota', 'RCPT TO', 'QuotaIssues'],
    ['554 5.7.1 <someone@icloud.com>: Relay access denied', 'RCPT TO', 'RelayDenied'],
    ['550 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137', 'end of DATA', 'PolicyRelated'],
    ['554 5.7.1 [HME1] This message was blocked for failing both SPF and DKIM authentication checks. See https://support.apple.com/en-us/HT204137 for mailing best practices', 'end of DATA', 'AuthenticationFailed'],
    ['554 5.7.1 Your message was rejected due to example.com\'s DMARC policy. See https://support.apple.com/en-us/HT204137 for', 'end of DATA', 'AuthenticationFailed'],
    ['550 5.7.1 Your email was rejected due to having a domain present in the Spamhaus DBL -- see https://www.spamhaus.org/dbl/', 'end of DATA', 'SpamBlock'],
    ['550 5.7.1 Mail from IP 192.0.2.25 was rejected due to listing in Spamhaus SBL. For details please see http://www.spamhaus.org/query/bl?ip=192.0.2.25', 'greeting', 'SpamBlock'],
    ['550 5.7.0 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi?ip=192.0.2.25', 'greeting', 'SpamBlock'],
    ['421 4.7.1 Messages to someone@icloud.com deferred due to excessive volume. Try again later - https://support.apple.com/en-us/HT204137', 'RCPT TO', 'PolicyRelated'],
    ['450 4.1.8 <sender@example.com>: Sender address rejected: Domain not found', 'RCPT TO', 'InvalidSender'],
    ['554 mx01.mail.icloud.com ESMTP not accepting connections', 'greeting', 'SpamBlock'],
  ],
  // The registry's codes as the peers in this repository's tests send them (Postfix, Dovecot) and as Halcyon
  // records its own failures (resolve, connect, expiry).
  [RFC3463]: [
    ['550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table', 'RCPT TO', 'InvalidRecipient'],
    ['550 5.1.1 <nobody@dove.test> User doesn\'t exist: nobody@dove.test', 'RCPT TO', 'InvalidRecipient'],
    ['552 5.2.2 <r2@dove.test> Quota exceeded (mailbox for user is full)', 'end of DATA', 'QuotaIssues'],
    ['554 5.7.1 <x@example.test>: Recipient address rejected: Access denied', 'RCPT TO', 'PolicyRelated'],
    ['554 5.7.1 <x@example.test>: Relay access denied', 'RCPT TO', 'RelayDenied'],
    ['452 4.5.3 Error: too many recipients', 'RCPT TO', 'TooManyRecipients'],
    ['450 4.1.1 <x@example.test>: Recipient address rejected: unverified address: host mx.example.test said: 550 5.1.1 User unknown', 'RCPT TO', 'InvalidRecipient'],
    ['553 5.1.8 <sender@example.test>: Sender address rejected: Domain not found', 'MAIL FROM', 'InvalidSender'],
    ['550 5.1.1 <sender@example.test>: Sender address rejected: User unknown', 'MAIL FROM', 'InvalidSender'],
    ['556 5.1.10 Recipient address has null MX', 'resolve', 'BadDomain'],
    ['550 5.1.2 Domain example.invalid does not exist (NXDOMAIN)', 'resolve', 'BadDomain'],
    ['451 4.4.3 DNS lookup of example.test failed: SERVFAIL', 'resolve', 'DNSFailure'],
    ['451 4.4.1 connect to mx.example.test[192.0.2.1]:25: timeout', 'connect', 'NoAnswerFromHost'],
    ['451 4.4.2 connection reset by peer', 'end of DATA', 'BadConnection'],
    ['451 4.4.7 message expired after 5 days in the queue; last error: 451 4.4.1 connection timed out', 'connect', 'MessageExpired'],
    ['550 5.7.27 Sender address has null MX', 'MAIL FROM', 'InvalidSender'],
    ['550 5.7.17 Mailbox owner has changed', 'RCPT TO', 'InactiveMailbox'],
    ['550 5.7.18 Domain owner has changed', 'RCPT TO', 'BadDomain'],
    ['451 4.7.1 Greylisted, please try again in 300 seconds', 'RCPT TO', 'TransientFailure'],
    ['450 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.test.html', 'RCPT TO', 'TransientFailure'],
    ['250 2.0.0 Ok: queued as 4Fq2', 'end of DATA', 'Delivered'],
  ],
};

function parse(line: string): { code: number; enhanced?: string; text: string } {
  const code = Number(line.slice(0, 3));
  const { enhanced, rest } = splitEnhanced(code, line.slice(4));
  return enhanced ? { code, enhanced, text: rest } : { code, text: rest };
}

const classifier = loadBounceClassifier();
const rows = Object.entries(TABLE).flatMap(([source, list]) => list.map((r) => ({ source, r })));

test('the table holds at least 60 replies from the providers\' published pages', () => {
  const fromProviders = rows.filter((x) => x.source !== RFC3463).length;
  assert.ok(fromProviders >= 60, `${fromProviders} provider replies`);
});

for (const { source, r: [line, phase, want] } of rows) {
  test(`${want} ← ${line.slice(0, 70)} (${phase}; ${new URL(source).host})`, () => {
    const got = classifier.explain({ ...parse(line), command: phase });
    assert.equal(got.class, want, `decided by ${got.rule}`);
  });
}

test('only the address classes suppress, and none of reputation, quota, policy, auth', () => {
  assert.deepEqual([...SUPPRESSING_CLASSES].sort(), ['BadDomain', 'InactiveMailbox', 'InvalidRecipient']);
  const rep = classifier.classify(parse('550 5.7.1 Service unavailable; Client host [192.0.2.25] blocked using zen.spamhaus.org; low reputation of the sending IP'));
  assert.equal(SUPPRESSING_CLASSES.has(rep), false, rep);
});

test('no rule: 4xx is TransientFailure, 5xx Uncategorized', () => {
  assert.equal(classifier.classify({ code: 451, text: 'something odd' }), 'TransientFailure');
  assert.equal(classifier.classify({ code: 550, text: 'Rejected' }), 'Uncategorized');
  assert.equal(classifier.explain({ code: 550, text: 'Rejected' }).rule, 'no rule matched');
});

test('an enhanced code at the start of the text counts when the field is absent, if its class matches', () => {
  assert.equal(classifier.classify({ code: 550, text: '5.1.1 no' }), 'InvalidRecipient');
  assert.equal(classifier.classify({ code: 450, text: '5.1.1 no' }), 'TransientFailure');
});

test('rule files: bad ones are refused with the rule named, an operator file wins', () => {
  const bad = parseBounceRules('[[rule]]\nclass = "Nope"\ntext = "x"\n[[rule]]\nclass = "SpamBlock"\n[[rule]]\nclass = "SpamBlock"\nenhanced = "5.7"\n[[rule]]\nclass = "SpamBlock"\ntext = "("\nzap = 1\n', 'f.toml');
  assert.deepEqual(bad.problems.map((p) => p.path), ['f.toml rule 1', 'f.toml rule 2', 'f.toml rule 3', 'f.toml rule 4', 'f.toml rule 4']);
  assert.match(bad.problems[0]!.message, /class must be one of .*InvalidRecipient/);
  assert.equal(parseBounceRules('nope = 1', 'g.toml').problems[0]?.path, 'g.toml: nope');
  assert.match(parseBounceRules('[[rule', 'h.toml').problems[0]?.message ?? '', /not TOML/);

  const dir = mkdtempSync(join(tmpdir(), 'bounce-rules-'));
  const file = join(dir, 'mine.toml');
  writeFileSync(file, '[[rule]]\nclass = "TransientFailure"\ncode = "5xx"\ntext = "blacklisted"\n');
  const mine = loadBounceClassifier([file]);
  const reply = { code: 550, enhanced: '5.7.1', text: 'Your IP is blacklisted' };
  assert.equal(classifier.classify(reply), 'SpamBlock');
  assert.deepEqual(mine.explain(reply), { class: 'TransientFailure', rule: `${file} rule 1` });
  assert.throws(() => loadBounceClassifier([join(dir, 'missing.toml')]), /cannot read .*missing\.toml: ENOENT/);
});
