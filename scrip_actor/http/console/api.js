// The REST API as the console calls it: every call carries the key as `Authorization: Bearer`, never in a URL.
// The key lives in sessionStorage: it is gone when the browser tab's session ends, and no other site can read it.

const KEY_NAME = "scrip.apiKey";

export function savedKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function saveKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_NAME);
}

// An error answer of the API: its status and the body's {code, message, details}.
export class ApiError extends Error {
  constructor(status, body) {
    super(`${status} ${body.code}: ${body.message}`);
    this.status = status;
    this.body = body;
  }
}

// Build "/v1/...?a=b" from a path and a map of query parameters (empty values left out).
export function withQuery(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

// One call: JSON in and out. Answers the decoded body (text for non-JSON answers such as /metrics).
export async function call(method, path, body = undefined) {
  const headers = { Authorization: `Bearer ${savedKey() ?? ""}` };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const type = response.headers.get("Content-Type") ?? "";
  const value = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const shaped = typeof value === "object" && value !== null && "code" in value;
    throw new ApiError(response.status, shaped ? value : { code: "http_error", message: String(value), details: {} });
  }
  return value;
}

export const get = (path, query) => call("GET", withQuery(path, query));
export const post = (path, body) => call("POST", path, body);
