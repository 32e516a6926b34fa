/**
 * types/mailauth-internals — declarations for the parts of mailauth 7.1
 * that intake/dkim builds its signer from (mailauth ships types for its
 * public API only). mailauth's own signer cannot oversign header fields, so
 * intake/dkim composes these pieces — mailauth's header parser, relaxed
 * canonicalization, body hash and signature header formatter — itself; see
 * docs/decisions/0007-dkim-signing-from-mailauth-parts.md. mailauth is pinned
 * exactly in package.json because these paths are not its public API.
 */
declare module 'mailauth/lib/tools.js' {
  export interface ParsedHeaderLine { key: string; casedKey: string; line: Buffer }
  export interface SigningHeaderLines { keys: string; headers: ParsedHeaderLine[] }
  const tools: {
    parseHeaders(buf: Buffer): { parsed: ParsedHeaderLine[]; original: Buffer };
    getSigningHeaderLines(parsed: ParsedHeaderLine[], fieldNames: string, verify?: boolean): SigningHeaderLines;
    formatSignatureHeaderLine(type: 'DKIM', values: Record<string, string | number>, folded: boolean): string;
  };
  export default tools;
}

declare module 'mailauth/lib/dkim/header/relaxed.js' {
  import type { SigningHeaderLines } from 'mailauth/lib/tools.js';
  const relaxed: {
    relaxedHeaders(type: 'DKIM', lines: SigningHeaderLines, options: {
      signingDomain: string; selector: string; algorithm: string; canonicalization: string; bodyHash: string; signTime: Date;
    }): { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, string | number> };
  };
  export default relaxed;
}

declare module 'mailauth/lib/dkim/body/index.js' {
  const body: {
    dkimBody(canonicalization: 'relaxed' | 'simple', hashAlgo: string, maxBodyLength: number | false): {
      update(chunk: Buffer): void;
      digest(encoding: 'base64'): string;
    };
  };
  export default body;
}
