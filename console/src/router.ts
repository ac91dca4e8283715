import { useEffect, useState } from 'react';

/**
 * Hash routes, so every view is a link (an alert's webhook links to them): `#/operations?status=Failed&field=email
 * &value=a@b.dk`, `#/sync-errors?kind=ModifiedInBoth`, `#/jobs`, `#/dead-letters`, `#/alerts`, `#/failures`.
 */
export const PAGES = ['operations', 'failures', 'sync-errors', 'jobs', 'dead-letters', 'alerts'] as const;
export type Page = (typeof PAGES)[number];

export interface Route {
  page: Page;
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?');
  const page = (PAGES as readonly string[]).includes(path) ? (path as Page) : 'operations';
  return { page, params: new URLSearchParams(query) };
}

export function hrefOf(page: Page, params?: URLSearchParams | Record<string, string>): string {
  const query = new URLSearchParams(params).toString();
  return `#/${page}${query ? `?${query}` : ''}`;
}

export function navigate(page: Page, params?: URLSearchParams | Record<string, string>): void {
  window.location.hash = hrefOf(page, params);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
