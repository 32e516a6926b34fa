/**
 * http/inject-content — the content of an injection request made into the
 * bytes of an RFC 5322 message: raw content as given, or structured content
 * (`subject`, `text`, `html`, `headers`, `attachments`) composed by
 * nodemailer's MailComposer, with `{{var}}` replaced per recipient in the
 * subject and both bodies (HTML-escaped in `html`).
 *
 * Validates the structured shape (each problem is a message for a 400) and
 * never lets the composer read a file or a URL. Does not know recipients'
 * fates, the queue or HTTP.
 */
import MailComposer from 'nodemailer/lib/mail-composer';

export interface Attachment { readonly filename: string; readonly contentType?: string; readonly content: Buffer }

export interface StructuredContent {
  readonly subject?: string;
  readonly text?: string;
  readonly html?: string;
  /** Extra header fields; From, To, Cc, Reply-To and Subject given here take the place of the composed ones. */
  readonly headers: Readonly<Record<string, string>>;
  readonly attachments: readonly Attachment[];
}

export type Vars = Readonly<Record<string, string>>;

const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]{1,76}$/;

/** The structured content of a request, or what is wrong with it. */
export function parseStructured(v: Record<string, unknown>): StructuredContent | string {
  const str = (k: string): string | undefined | Error => {
    const x = v[k];
    if (x === undefined || x === null) return undefined;
    return typeof x === 'string' ? x : new Error(`content.${k} must be a string`);
  };
  const [subject, text, html] = [str('subject'), str('text'), str('html')];
  if (subject instanceof Error) return subject.message;
  if (text instanceof Error) return text.message;
  if (html instanceof Error) return html.message;
  if (text === undefined && html === undefined) return 'content needs text or html (or send raw RFC 5322 content as a string)';
  const headers: Record<string, string> = {};
  if (v.headers !== undefined && v.headers !== null) {
    if (typeof v.headers !== 'object' || Array.isArray(v.headers)) return 'content.headers must be an object of strings';
    for (const [name, value] of Object.entries(v.headers as Record<string, unknown>)) {
      if (!FIELD_NAME.test(name)) return `content.headers: not a header field name: ${name.slice(0, 80)}`;
      if (typeof value !== 'string' || /[\r\n]/.test(value)) return `content.headers.${name} must be a string without line breaks`;
      headers[name] = value;
    }
  }
  const attachments: Attachment[] = [];
  if (v.attachments !== undefined && v.attachments !== null) {
    if (!Array.isArray(v.attachments)) return 'content.attachments must be an array';
    for (const [i, a] of (v.attachments as unknown[]).entries()) {
      if (typeof a !== 'object' || a === null) return `content.attachments[${i}] must be an object`;
      const { filename, content_type: type, content } = a as Record<string, unknown>;
      if (typeof filename !== 'string' || filename === '' || /[\r\n]/.test(filename)) return `content.attachments[${i}].filename must be a non-empty string`;
      if (type !== undefined && (typeof type !== 'string' || !/^[\w.+-]+\/[\w.+-]+$/.test(type))) return `content.attachments[${i}].content_type must be a media type like "application/pdf"`;
      if (typeof content !== 'string' || !BASE64.test(content)) return `content.attachments[${i}].content must be base64`;
      attachments.push({ filename, content: Buffer.from(content, 'base64'), ...(typeof type === 'string' ? { contentType: type } : {}) });
    }
  }
  return {
    ...(subject !== undefined ? { subject } : {}), ...(text !== undefined ? { text } : {}), ...(html !== undefined ? { html } : {}),
    headers, attachments,
  };
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** `{{name}}` (spaces allowed inside the braces) replaced by its value; an unknown name by nothing. */
export function substitute(template: string, vars: Vars, html = false): string {
  return template.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_, name: string) => {
    const value = Object.hasOwn(vars, name) ? vars[name]! : '';
    return html ? value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!) : value;
  });
}

const COMPOSED_FIELDS = new Map([['from', 'from'], ['to', 'to'], ['cc', 'cc'], ['reply-to', 'replyTo'], ['subject', 'subject']] as const);

/**
 * The message for `to` (one recipient's address, or the group "undisclosed-recipients:;" for several): From is
 * the envelope sender unless the headers name one; `vars` are substituted in the subject and bodies.
 */
export async function composeStructured(c: StructuredContent, env: { readonly from: string; readonly to: string }, vars: Vars = {}): Promise<Buffer> {
  const fields: Record<string, string> = { from: env.from, to: env.to };
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(c.headers)) {
    const field = COMPOSED_FIELDS.get(name.toLowerCase() as 'from');
    if (field) fields[field] = value;
    else headers[name] = value;
  }
  const subject = fields.subject ?? c.subject;
  const composer = new MailComposer({
    ...fields,
    ...(subject !== undefined ? { subject: substitute(subject, vars) } : {}),
    ...(c.text !== undefined ? { text: substitute(c.text, vars) } : {}),
    ...(c.html !== undefined ? { html: substitute(c.html, vars, true) } : {}),
    headers,
    attachments: c.attachments.map((a) => ({ filename: a.filename, content: a.content, ...(a.contentType ? { contentType: a.contentType } : {}) })),
    // Content comes only from the request: never a file or a URL of this host's.
    disableFileAccess: true, disableUrlAccess: true,
  });
  return composer.compile().build();
}
