import type { SsoOptions, SsoStarted } from '@muster/proto';
import { ApiError, api } from './api.js';

/** Whether the server offers single sign-on; false when it cannot say. */
export async function ssoOffered(): Promise<boolean> {
  try {
    return (await api<SsoOptions>('GET', '/v1/session/sso')).enabled;
  } catch {
    return false;
  }
}

/** Sends the browser to the identity provider; it comes back to /signin/sso. */
export async function startSso(): Promise<void> {
  const { url } = await api<SsoStarted>('POST', '/v1/session/sso');
  location.assign(url);
}

/**
 * The identity provider sent the browser back to /signin/sso with a code and state: exchanged
 * once for a session, and wiped from the URL first, so no history entry keeps them. Returns why
 * it failed, for the sign-in page.
 */
export async function finishSso(): Promise<string | undefined> {
  if (location.pathname !== '/signin/sso') return undefined;
  const query = location.search.slice(1);
  history.replaceState(null, '', '/signin');
  if (!query) return undefined;
  try {
    await api('POST', '/v1/session/sso/callback', { query });
    return undefined;
  } catch (err) {
    return `Single sign-on failed: ${err instanceof ApiError ? err.message : 'the server could not be reached'}`;
  }
}
