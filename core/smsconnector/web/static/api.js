// The JSON API from the browser: a session token in sessionStorage, sent as a bearer token (never a cookie,
// never in a URL), and the live event stream read with fetch so that it can carry that header too.

const SESSION_KEY = "smsconnector.session";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** The signed-in session ({token, role, agent_id, expires_at}) or null. */
export function currentSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (session && new Date(session.expires_at) > new Date()) return session;
  } catch {
    // a value this page did not write: treat as signed out
  }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

/** Exchange an agent's or admin token, or a one-time code, for a session, and keep it for this tab. */
export async function signIn(credential) {
  const session = await call("POST", "/api/sessions", { token: credential.trim() });
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

/** End the session on the server (so the token stops working everywhere) and forget it here. */
export async function signOut() {
  const session = currentSession();
  sessionStorage.removeItem(SESSION_KEY);
  if (session) {
    try {
      await call("DELETE", "/api/sessions/current", { token: session.token });
    } catch {
      // already expired or ended: nothing left to end
    }
  }
}

/** A one-time code handed over in the URL's fragment (#code=...), which is then removed from the address bar. */
export function takeCodeFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const code = params.get("code");
  if (code) history.replaceState(null, "", location.pathname + location.search);
  return code;
}

/** Call the API with the current session; a 401 signs the tab out and reloads to the sign-in form. */
export async function api(method, path, body) {
  const session = currentSession();
  try {
    return await call(method, path, { token: session && session.token, body });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      sessionStorage.removeItem(SESSION_KEY);
      location.reload();
    }
    throw error;
  }
}

async function call(method, path, { token, body } = {}) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data && data.error, data && data.detail);
  return data;
}

/**
 * Follow /api/events: onEvent(kind, data) for every event, onState("live" | "reconnecting") as the connection
 * comes and goes. After a drop it reconnects with Last-Event-ID, so the server replays what was missed. Each
 * time the stream is live, first time included, onLive() lets the page reload what it shows: what changed
 * before the stream listened (between the page's first load and its subscription, or for longer than the
 * server keeps events) comes in no event. Returns a function that stops it.
 */
export function followEvents({ onEvent, onState, onLive }) {
  let lastId = null;
  let stopped = false;
  let controller = null;
  let retryMs = 1000;

  async function connect() {
    while (!stopped) {
      controller = new AbortController();
      const session = currentSession();
      if (!session) return;
      const headers = { authorization: `Bearer ${session.token}`, accept: "text/event-stream" };
      if (lastId !== null) headers["last-event-id"] = lastId;
      try {
        const response = await fetch("/api/events", { headers, signal: controller.signal, cache: "no-store" });
        if (response.status === 401) {
          sessionStorage.removeItem(SESSION_KEY);
          location.reload();
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        onState("live");
        onLive();
        retryMs = 1000;
        await readFrames(response.body, (frame) => {
          if (frame.retry) retryMs = frame.retry;
          if (frame.id !== undefined) lastId = frame.id;
          if (frame.event && frame.data) onEvent(frame.event, JSON.parse(frame.data));
        });
      } catch (error) {
        if (stopped) return;
      }
      if (stopped) return;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }

  connect();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}

async function readFrames(body, onFrame) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const frame = {};
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
        else if (field === "retry") frame.retry = Number(value) || undefined;
        else frame[field] = value;
      }
      onFrame(frame);
    }
  }
}
