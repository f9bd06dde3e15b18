/**
 * `WWW-Authenticate` challenges (RFC 9110 §11.6.1, https://www.rfc-editor.org/rfc/rfc9110#section-11.6.1),
 * parsed for the two questions the proxy asks a resource server's 401: "use_dpop_nonce" (RFC 9449 §9)
 * and "invalid_token" (RFC 6750 §3.1). oauth4webapi 3 parses these headers only inside its own
 * requests and no longer exports the parser (2.x did), and the proxy's upstream responses come from
 * undici, not from the library; so this is the small explicit parser, to the RFC's grammar:
 *
 *   WWW-Authenticate = #challenge
 *   challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param       = token BWS "=" BWS ( token / quoted-string )
 *
 * Scheme and parameter names are case-insensitive (returned lower-case). Anything malformed ends the
 * parse with what was read so far: an unreadable challenge never triggers a retry or a refresh.
 */
export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*(?=\s*(,|$))/;

export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const out: Challenge[] = [];
  for (const value of typeof header === 'string' ? [header] : header) parseInto(value, out);
  return out;
}

function parseInto(input: string, out: Challenge[]): void {
  let s = input;
  const skipSpace = () => {
    s = s.replace(/^[ \t]+/, '');
  };
  for (let guard = 0; guard < 64; guard++) {
    s = s.replace(/^[ \t,]+/, '');
    if (s === '') return;
    const scheme = TOKEN.exec(s)?.[0];
    if (!scheme) return;
    s = s.slice(scheme.length);
    const params: Record<string, string> = {};
    out.push({ scheme: scheme.toLowerCase(), params });
    if (!/^[ \t]/.test(s)) continue;
    skipSpace();
    // A token68 (e.g. `Negotiate abc==`) carries no parameters we read.
    const t68 = TOKEN68.exec(s);
    if (t68 && !/^[ \t]*=[^=]/.test(s.slice(t68[0].replace(/=+$/, '').length))) {
      s = s.slice(t68[0].length);
      continue;
    }
    for (let p = 0; p < 64; p++) {
      skipSpace();
      const name = TOKEN.exec(s)?.[0];
      if (!name) break;
      const rest = s.slice(name.length).replace(/^[ \t]*/, '');
      // No "=": this token is the next challenge's scheme.
      if (!rest.startsWith('=')) break;
      s = rest.slice(1).replace(/^[ \t]*/, '');
      let value: string;
      if (s.startsWith('"')) {
        const quoted = /^"((?:[^"\\]|\\.)*)"/.exec(s);
        if (!quoted) return;
        value = (quoted[1] as string).replace(/\\(.)/g, '$1');
        s = s.slice(quoted[0].length);
      } else {
        const token = TOKEN.exec(s)?.[0];
        if (!token) return;
        value = token;
        s = s.slice(token.length);
      }
      params[name.toLowerCase()] = value;
      skipSpace();
      if (!s.startsWith(',')) break;
      s = s.slice(1);
    }
  }
}

/** True when some challenge of one of `schemes` carries `error="<error>"`. */
export function hasChallengeError(
  header: string | readonly string[] | undefined,
  schemes: readonly string[],
  error: string,
): boolean {
  return parseChallenges(header).some((c) => schemes.includes(c.scheme) && c.params.error === error);
}
