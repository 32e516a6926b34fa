/**
 * smtp/command — one command line (without its CRLF) in, one typed command
 * out. Pure; the session decides what a command means in its state.
 *
 * Paths and ESMTP parameters are split here but parsed by smtp/address and
 * smtp/params, because what they accept depends on the session (SMTPUTF8,
 * offered extensions).
 */

export type Command =
  | { readonly verb: 'EHLO' | 'HELO'; readonly domain: string }
  | { readonly verb: 'MAIL'; readonly path: string; readonly params: string }
  | { readonly verb: 'RCPT'; readonly path: string; readonly params: string }
  | { readonly verb: 'DATA' | 'RSET' | 'QUIT' | 'STARTTLS' }
  | { readonly verb: 'NOOP' | 'HELP' | 'VRFY' | 'EXPN'; readonly arg: string }
  | { readonly verb: 'BDAT'; readonly size: number; readonly last: boolean }
  | { readonly verb: 'AUTH'; readonly mechanism: string; readonly initial?: string };

export type CommandError =
  | { readonly error: 'unknown'; readonly verb: string }
  | { readonly error: 'syntax'; readonly verb: string; readonly detail: string };

export const isCommandError = (c: Command | CommandError): c is CommandError => 'error' in c;

/**
 * Splits `FROM:<a@b> SIZE=10` into path and params. Tolerates one space after
 * the colon (common in the wild, RFC 5321 §4.1.1.2 forbids it but Postfix and
 * Exim accept it). The path is either `<…>` (which may hold spaces inside a
 * quoted local part) or a bare word, which is wrapped in brackets.
 */
function splitPath(rest: string, keyword: 'FROM' | 'TO'): { path: string; params: string } | undefined {
  if (rest.slice(0, keyword.length + 1).toUpperCase() !== `${keyword}:`) return undefined;
  let s = rest.slice(keyword.length + 1);
  if (s.startsWith(' ')) s = s.slice(1);
  if (s.startsWith('<')) {
    let inQuote = false;
    for (let i = 1; i < s.length; i++) {
      const c = s[i];
      if (c === '\\' && inQuote) i++;
      else if (c === '"') inQuote = !inQuote;
      else if (c === '>' && !inQuote) {
        const params = s.slice(i + 1);
        if (params !== '' && !params.startsWith(' ')) return undefined;
        return { path: s.slice(0, i + 1), params: params.trim() };
      }
    }
    return undefined;
  }
  const sp = s.indexOf(' ');
  const word = sp < 0 ? s : s.slice(0, sp);
  if (word === '' || /[<>]/.test(word)) return undefined;
  return { path: `<${word}>`, params: sp < 0 ? '' : s.slice(sp + 1).trim() };
}

export function parseCommand(line: string): Command | CommandError {
  const sp = line.indexOf(' ');
  const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
  const rest = sp < 0 ? '' : line.slice(sp + 1);
  const syntax = (detail: string): CommandError => ({ error: 'syntax', verb, detail });
  switch (verb) {
    case 'EHLO':
    case 'HELO': {
      const domain = rest.trim();
      if (domain === '' || /\s/.test(domain)) return syntax(`${verb} requires a domain or address literal`);
      return { verb, domain };
    }
    case 'MAIL':
    case 'RCPT': {
      const split = splitPath(rest, verb === 'MAIL' ? 'FROM' : 'TO');
      if (!split) return syntax(verb === 'MAIL' ? 'use MAIL FROM:<address>' : 'use RCPT TO:<address>');
      return verb === 'MAIL' ? { verb, ...split } : { verb, ...split };
    }
    case 'DATA':
    case 'RSET':
    case 'QUIT':
    case 'STARTTLS':
      if (rest.trim() !== '') return syntax(`${verb} takes no arguments`);
      return { verb } as Command;
    case 'NOOP':
    case 'HELP':
    case 'VRFY':
    case 'EXPN':
      return { verb, arg: rest };
    case 'BDAT': {
      const m = /^(\d{1,15})(?: +(LAST))?$/i.exec(rest.trim());
      if (!m) return syntax('use BDAT <size> [LAST]');
      return { verb, size: Number(m[1]), last: m[2] !== undefined };
    }
    case 'AUTH': {
      const [mechanism, initial, extra] = rest.trim().split(/ +/);
      if (!mechanism || extra !== undefined) return syntax('use AUTH <mechanism> [initial-response]');
      return initial === undefined ? { verb, mechanism: mechanism.toUpperCase() } : { verb, mechanism: mechanism.toUpperCase(), initial };
    }
    default:
      return { error: 'unknown', verb: verb.slice(0, 16) };
  }
}
