/**
 * smtp/params — ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2
 * esmtp-param), and the xtext encoding of RFC 3461 §4.
 *
 * Checks each known parameter's syntax and whether its extension is offered;
 * knows nothing of the session beyond the `Offered` flags it is handed.
 */
import type { BodyType, Notify, NotifyWhen, Ret } from '../queue/model.js';

export interface Offered {
  readonly size: boolean;
  readonly eightBitMime: boolean;
  readonly smtputf8: boolean;
  readonly dsn: boolean;
  readonly auth: boolean;
}

export interface MailParams {
  readonly size?: number;
  readonly body?: BodyType;
  readonly smtputf8: boolean;
  readonly ret?: Ret;
  readonly envid?: string;
  /** AUTH=<mailbox> of RFC 4954 §5, decoded; "<>" when the client says so. */
  readonly auth?: string;
}

export interface RcptParams {
  readonly notify?: Notify;
  /** "rfc822;user@example.test", decoded from xtext. */
  readonly orcpt?: string;
}

export interface ParamError {
  readonly error: 'syntax' | 'unsupported' | 'bad-value';
  readonly detail: string;
}

export const isParamError = (v: object): v is ParamError => 'error' in v;

const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const VALUE = /^[\x21-\x3c\x3e-\x7e\u0080-\uffff]+$/u;

/** Splits "KEY=VALUE KEY2" into pairs; keys upper-cased. */
export function splitParams(text: string): { key: string; value?: string }[] | ParamError {
  const out: { key: string; value?: string }[] = [];
  for (const part of text.split(' ').filter((p) => p.length > 0)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    if (!KEYWORD.test(key)) return { error: 'syntax', detail: `bad parameter ${part}` };
    if (value !== undefined && !VALUE.test(value)) return { error: 'syntax', detail: `bad value for ${key}` };
    out.push(value === undefined ? { key: key.toUpperCase() } : { key: key.toUpperCase(), value });
  }
  return out;
}

/** RFC 3461 §4 xtext: "+" followed by two upper-case hex digits encodes one octet. */
export function decodeXtext(text: string): string | undefined {
  if (!/^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/.test(text)) return undefined;
  return text.replace(/\+([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

export function encodeXtext(text: string): string {
  let out = '';
  for (const ch of Buffer.from(text, 'utf8')) {
    out += ch >= 0x21 && ch <= 0x7e && ch !== 0x2b && ch !== 0x3d ? String.fromCharCode(ch) : `+${ch.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function parseMailParams(text: string, offered: Offered): MailParams | ParamError {
  const pairs = splitParams(text);
  if ('error' in pairs) return pairs;
  let size: number | undefined;
  let body: BodyType | undefined;
  let smtputf8 = false;
  let ret: Ret | undefined;
  let envid: string | undefined;
  let auth: string | undefined;
  const seen = new Set<string>();
  for (const { key, value } of pairs) {
    if (seen.has(key)) return { error: 'syntax', detail: `duplicate ${key}` };
    seen.add(key);
    switch (key) {
      case 'SIZE':
        if (!offered.size) return { error: 'unsupported', detail: 'SIZE not supported' };
        if (value === undefined || !/^\d{1,20}$/.test(value)) return { error: 'bad-value', detail: 'SIZE needs a number' };
        size = Number(value);
        break;
      case 'BODY': {
        const v = value?.toUpperCase();
        if (v === '7BIT') body = '7BIT';
        else if (v === '8BITMIME' && offered.eightBitMime) body = '8BITMIME';
        else return { error: v === 'BINARYMIME' || v === '8BITMIME' ? 'unsupported' : 'bad-value', detail: `BODY=${value ?? ''} not supported` };
        break;
      }
      case 'SMTPUTF8':
        if (!offered.smtputf8) return { error: 'unsupported', detail: 'SMTPUTF8 not supported' };
        if (value !== undefined) return { error: 'bad-value', detail: 'SMTPUTF8 takes no value' };
        smtputf8 = true;
        break;
      case 'RET': {
        if (!offered.dsn) return { error: 'unsupported', detail: 'DSN not supported' };
        const v = value?.toUpperCase();
        if (v !== 'FULL' && v !== 'HDRS') return { error: 'bad-value', detail: 'RET must be FULL or HDRS' };
        ret = v;
        break;
      }
      case 'ENVID': {
        if (!offered.dsn) return { error: 'unsupported', detail: 'DSN not supported' };
        const v = value === undefined ? undefined : decodeXtext(value);
        if (v === undefined || v.length > 100) return { error: 'bad-value', detail: 'bad ENVID' };
        envid = v;
        break;
      }
      case 'AUTH': {
        if (!offered.auth) return { error: 'unsupported', detail: 'AUTH parameter not supported' };
        const v = value === undefined ? undefined : decodeXtext(value);
        if (v === undefined) return { error: 'bad-value', detail: 'bad AUTH parameter' };
        auth = v;
        break;
      }
      default:
        return { error: 'unsupported', detail: `parameter ${key} not supported` };
    }
  }
  return { size, body, smtputf8, ret, envid, auth };
}

export function parseRcptParams(text: string, offered: Offered): RcptParams | ParamError {
  const pairs = splitParams(text);
  if ('error' in pairs) return pairs;
  let notify: Notify | undefined;
  let orcpt: string | undefined;
  const seen = new Set<string>();
  for (const { key, value } of pairs) {
    if (seen.has(key)) return { error: 'syntax', detail: `duplicate ${key}` };
    seen.add(key);
    switch (key) {
      case 'NOTIFY': {
        if (!offered.dsn) return { error: 'unsupported', detail: 'DSN not supported' };
        const items = (value ?? '').toUpperCase().split(',');
        if (items.length === 1 && items[0] === 'NEVER') notify = 'NEVER';
        else {
          const valid: NotifyWhen[] = ['SUCCESS', 'FAILURE', 'DELAY'];
          if (!items.every((i): i is NotifyWhen => (valid as string[]).includes(i)) || new Set(items).size !== items.length) {
            return { error: 'bad-value', detail: 'NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY' };
          }
          notify = items;
        }
        break;
      }
      case 'ORCPT': {
        if (!offered.dsn) return { error: 'unsupported', detail: 'DSN not supported' };
        const semi = value?.indexOf(';') ?? -1;
        const type = semi > 0 ? value!.slice(0, semi) : '';
        const addr = semi > 0 ? decodeXtext(value!.slice(semi + 1)) : undefined;
        if (!/^[A-Za-z0-9-]+$/.test(type) || addr === undefined || addr.length === 0 || addr.length > 500) {
          return { error: 'bad-value', detail: 'ORCPT must be addr-type;xtext' };
        }
        orcpt = `${type.toLowerCase()};${addr}`;
        break;
      }
      default:
        return { error: 'unsupported', detail: `parameter ${key} not supported` };
    }
  }
  return { notify, orcpt };
}
