// JSON over fetch with the bearer token. A 401 is answered once by auth.refresh() and one
// retry; the API's one error shape ({"error": {code, message, fields, current?}}, docs/api.md)
// becomes an ApiError whose message is ours (i18n, by code) when we know the code, the
// server's otherwise. A request that never reached the server throws NetworkError.
import { auth } from "./auth.js";
import { t, has } from "./i18n.js";
import { SignedOut } from "./protocol.js";

export class ApiError extends Error {
  constructor({ status, code, message, fields = {}, current = null }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.current = current;
  }

  /** Per-field messages: {"condition.spo2": ["…"], …}; `__all__` for cross-field ones. */
  fieldMessages() {
    return this.fields ?? {};
  }
}

export class NetworkError extends Error {
  constructor(cause) {
    super(t("error.network"));
    this.name = "NetworkError";
    this.cause = cause;
  }
}

function messageFor(code, serverMessage, status) {
  if (code && has(`error.${code}`)) return t(`error.${code}`);
  if (serverMessage) return serverMessage;
  return t("error.http", { status });
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: a proxy's page, say */
  }
  const error = body?.error ?? {};
  return new ApiError({
    status: response.status,
    code: error.code ?? `http_${response.status}`,
    message: messageFor(error.code, error.message, response.status),
    fields: error.fields ?? {},
    current: error.current ?? null,
  });
}

/**
 * `method` `path` with an optional JSON `body`; resolves to the parsed JSON answer (null for
 * an empty one). `authenticated: false` sends no token (the public hospital endpoints).
 */
export async function api(path, { method = "GET", body, headers = {}, authenticated = true, signal } = {}) {
  const send = async () => {
    const all = { Accept: "application/json", ...headers };
    if (body !== undefined) all["Content-Type"] = "application/json";
    if (authenticated && auth.access) all.Authorization = `Bearer ${auth.access}`;
    try {
      return await fetch(path, {
        method,
        headers: all,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
      });
    } catch (error) {
      if (error?.name === "AbortError") throw error;
      throw new NetworkError(error);
    }
  };
  let response = await send();
  if (response.status === 401 && authenticated) {
    try {
      await auth.refresh();
    } catch (error) {
      if (error instanceof SignedOut) throw error;
      throw new NetworkError(error);
    }
    response = await send();
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Every page of a paged endpoint (`{count, page, pages, results}`), concatenated. */
export async function apiAllPages(path, params = {}, options = {}) {
  const results = [];
  for (let page = 1; ; page += 1) {
    const query = new URLSearchParams({ ...params, page: String(page) });
    const answer = await api(`${path}?${query}`, options);
    results.push(...answer.results);
    if (page >= answer.pages) return results;
  }
}
