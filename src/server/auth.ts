/**
 * server.auth: bearer tokens from an environment variable (comma-separated) or a file (one a
 * line), compared in constant time. Shared by the REST and gRPC frontends.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InferenceError, RuntimeError } from '../errors.js';

export type AuthSource = { readonly tokensEnv: string } | { readonly tokensFile: string };

/** Checks an `Authorization` header value; true when it carries a known token. */
export type Authenticator = (authorization: string | undefined) => boolean;

const digest = (t: string) => createHash('sha256').update(t, 'utf8').digest();

/** Reads the tokens once, at start: none found is a start failure, not an open server. */
export function loadTokens(source: AuthSource, env: NodeJS.ProcessEnv = process.env): string[] {
  let raw: string;
  let where: string;
  if ('tokensEnv' in source) {
    where = `environment variable ${source.tokensEnv} (server.auth.tokens_env)`;
    raw = env[source.tokensEnv] ?? '';
  } else {
    where = `${source.tokensFile} (server.auth.tokens_file)`;
    try {
      raw = readFileSync(source.tokensFile, 'utf8');
    } catch (e) {
      throw new RuntimeError(
        'BENTO_ERR_RUNTIME_AUTH',
        `cannot read the tokens in ${where}: ${(e as Error).message}`,
      );
    }
  }
  const tokens = raw
    .split(/[,\n]/)
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (tokens.length === 0) {
    throw new RuntimeError(
      'BENTO_ERR_RUNTIME_AUTH',
      `server.auth is on but ${where} holds no token`,
    );
  }
  return tokens;
}

/**
 * Compares digests of equal length, so neither a token's length nor its first differing byte
 * shows in the time an answer takes; every token is compared, found or not.
 */
export function createAuthenticator(tokens: readonly string[]): Authenticator {
  const known = tokens.map(digest);
  return (authorization) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const given = digest(m?.[1] ?? '');
    let ok = false;
    for (const k of known) ok = timingSafeEqual(k, given) || ok;
    return ok && m !== null;
  };
}

export function unauthenticated(): InferenceError {
  return new InferenceError(
    'BENTO_ERR_INFER_UNAUTHENTICATED',
    'this server needs a bearer token: send Authorization: Bearer TOKEN (server.auth)',
  );
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|\[::1\])$/;

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}
