import { apiBase } from './config';

/** A problem answer of the API (RFC 9457): shown as its title and detail. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly code: string | undefined,
  ) {
    super(`${title}: ${detail}`);
  }
}

export interface ApiAnswer<T> {
  status: number;
  data: T;
  etag: string | null;
}

export type TokenSource = () => Promise<string>;

let tokenSource: TokenSource = async () => '';
export const useTokenSource = (source: TokenSource) => {
  tokenSource = source;
};

async function send(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; accept?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    Accept: options.accept ?? 'application/json',
    Authorization: `Bearer ${await tokenSource()}`,
    ...options.headers,
  };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`${apiBase()}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch (error) {
    throw new ApiError(0, 'The service cannot be reached', String(error), undefined);
  }
  if (!response.ok) {
    let problem: { title?: string; detail?: string; code?: string } = {};
    try {
      problem = (await response.json()) as typeof problem;
    } catch {
      // not problem+json
    }
    throw new ApiError(
      response.status,
      problem.title ?? `HTTP ${response.status}`,
      problem.detail ?? response.statusText,
      problem.code,
    );
  }
  return response;
}

export async function api<T = unknown>(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiAnswer<T>> {
  const response = await send(method, path, options);
  const text = await response.text();
  return {
    status: response.status,
    data: (text ? JSON.parse(text) : undefined) as T,
    etag: response.headers.get('etag'),
  };
}

export const get = async <T>(path: string) => (await api<T>('GET', path)).data;

/** Downloads an export with the user's token (a plain link could not carry it). */
export async function download(path: string, accept: string, fileName: string): Promise<void> {
  const response = await send('GET', path, { accept });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const enc = encodeURIComponent;
