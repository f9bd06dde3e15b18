import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Interaction, default as OidcProvider } from 'oidc-provider';
import type { DevIdpUser } from './options.js';
import { consentPage, loginPage, sendHtml } from './pages.js';
import { DEV_PASSWORD_ACR } from './configuration.js';

/** Login and consent, driven by oidc-provider's interaction API. */

const MAX_FORM_BYTES = 16 * 1024;
export const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]{1,64})(?:\/(login|confirm|abort))?$/;

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) return new URLSearchParams();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new HttpError(413, 'The form is too large.');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Compares digests so the comparison time does not depend on where the strings differ. */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** The details oidc-provider computes for the consent prompt (its default interaction policy). */
interface ConsentDetails {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

interface InteractionContext {
  provider: OidcProvider;
  users: readonly DevIdpUser[];
  consentMode: 'auto' | 'form';
}

async function grantConsent({ provider }: InteractionContext, details: Interaction): Promise<string> {
  const accountId = details.session?.accountId;
  const clientId = details.params.client_id;
  if (!accountId || typeof clientId !== 'string') throw new HttpError(400, 'No signed-in user.');
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId });
  if (!grant) throw new HttpError(400, 'The grant expired.');
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt
    .details as ConsentDetails;
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return grant.save();
}

async function finishConsent(
  ctx: InteractionContext,
  req: IncomingMessage,
  res: ServerResponse,
  details: Interaction,
): Promise<void> {
  const grantId = await grantConsent(ctx, details);
  // A new grant's id is handed back; an existing one was updated in place.
  const consent = details.grantId ? {} : { grantId };
  await ctx.provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

/** Our login and consent pages, driven by oidc-provider's interaction API. */
export async function handleInteraction(
  ctx: InteractionContext,
  req: IncomingMessage,
  res: ServerResponse,
  uid: string,
  action: string | undefined,
): Promise<void> {
  const { provider, users } = ctx;
  const details = await provider.interactionDetails(req, res);
  // The interaction cookie decides the interaction; a URL naming another one is refused.
  if (details.uid !== uid) throw new HttpError(400, 'This page belongs to another sign-in attempt.');
  const clientId = String(details.params.client_id ?? '');
  const prompt = details.prompt.name;

  if (req.method === 'GET' && action === undefined) {
    if (prompt === 'login') {
      sendHtml(res, 200, loginPage(uid, clientId));
    } else if (prompt === 'consent' && ctx.consentMode === 'auto') {
      await finishConsent(ctx, req, res, details);
    } else if (prompt === 'consent') {
      sendHtml(res, 200, consentPage(uid, clientId, String(details.params.scope ?? '')));
    } else {
      throw new HttpError(400, `Unsupported prompt: ${prompt}`);
    }
    return;
  }
  if (req.method !== 'POST' || action === undefined) throw new HttpError(405, 'Method not allowed.');

  const form = await readForm(req);
  if (action === 'abort') {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
  } else if (action === 'login' && prompt === 'login') {
    const username = form.get('username') ?? '';
    const password = form.get('password') ?? '';
    const user = users.find((u) => u.username === username);
    // Check a password even for unknown users, so both failures take the same time.
    const ok = sameSecret(password, user?.password ?? randomBytes(16).toString('hex')) && user !== undefined;
    if (!ok) {
      sendHtml(res, 200, loginPage(uid, clientId, 'Invalid username or password.', username));
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.id, amr: ['pwd'], acr: DEV_PASSWORD_ACR } },
      { mergeWithLastSubmission: false },
    );
  } else if (action === 'confirm' && prompt === 'consent') {
    await finishConsent(ctx, req, res, details);
  } else {
    throw new HttpError(400, 'This step does not match the sign-in state.');
  }
}
