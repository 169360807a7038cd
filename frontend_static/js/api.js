// The one way the dashboard talks to the API: adds the admin token, and turns
// every failure (network, HTTP error in OpenAI's shape, unexpected answer)
// into an ApiError whose message a person can act on.
import { API_BASE } from "../config.js";

const TOKEN_KEY = "gpucloud.adminToken";
const BASE = API_BASE.replace(/\/+$/, "");

export function apiOrigin() {
  return new URL(BASE || "/", location.href).href.replace(/\/+$/, "");
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(message, { status = 0, type = null, code = null, param = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
  }
}

function describe(status, error) {
  const message = (error && error.message) || "";
  if (status === 401) return message || "The admin token was not accepted.";
  if (status === 403) return `Not allowed: ${message || "the API refused this action."}`;
  if (status === 404) return message || "Not found: it may have been deleted meanwhile.";
  if (status === 429) return `Too many requests: ${message || "slow down and try again."}`;
  if (status === 503) {
    return `${message || "A service the API needs is unavailable."} Check the Health page, then try again.`;
  }
  if (status >= 500) {
    return `The server had a problem (HTTP ${status})${message ? `: ${message}` : "."} Try again in a moment.`;
  }
  return message || `The API refused the request (HTTP ${status}).`;
}

/**
 * Call the API. Resolves with the parsed JSON body; rejects with ApiError.
 * Options: method, body (sent as JSON), query (empty values are left out),
 * auth (default true), token (instead of the stored one), signal,
 * acceptStatus (statuses whose JSON body is a normal answer, e.g. 503 for /health).
 */
export async function api(path, options = {}) {
  const { method = "GET", body, query, auth = true, token, signal, acceptStatus = [] } = options;
  const url = new URL(BASE + path, location.href);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  const bearer = token ?? getToken();
  if (auth && bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(
      `Could not reach the GPU Cloud API at ${apiOrigin()}. Check your connection and that the API is running.`,
      { code: "network_error" },
    );
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (response.ok || acceptStatus.includes(response.status)) {
    if (payload === null) {
      throw new ApiError(`The API answered with something that is not JSON (HTTP ${response.status}).`, {
        status: response.status,
      });
    }
    return payload;
  }
  const error = payload && payload.error ? payload.error : null;
  const failure = new ApiError(describe(response.status, error), {
    status: response.status,
    type: error && error.type,
    code: error && error.code,
    param: error && error.param,
  });
  if (response.status === 401 && auth && token === undefined) {
    // The stored token stopped working (rotated): back to the sign-in form.
    window.dispatchEvent(new CustomEvent("gpucloud:unauthorized", { detail: failure.message }));
  }
  throw failure;
}

export function isAbort(exc) {
  return exc && exc.name === "AbortError";
}
