// REST client and session: login, refresh before expiry, logout.
// Tokens live in memory and in sessionStorage (this tab only; gone when it closes), never in localStorage.

const STORE_KEY = "qt.session";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/** One request to the sidecar; the parsed JSON body, or an ApiError carrying the server's reason verbatim. */
export async function request(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch {
    throw new ApiError(0, "the sidecar cannot be reached");
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok || (data && data.success === false)) {
    const reason = (data && (data.error || (data.order && data.order.error) || data.message)) || `HTTP ${res.status}`;
    throw new ApiError(res.status, String(reason), data);
  }
  return data;
}

/** Refresh this long before the access token expires (a fifth of its life, at most a minute). */
export function refreshLeadMs(ttlMs) {
  return Math.min(60_000, ttlMs / 5);
}

export class Session extends EventTarget {
  constructor() {
    super();
    this.state = null; // {accessToken, refreshToken, expiresAt, ttlMs, user: {username, role}}
    this.timer = 0;
    this.refreshing = null;
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
      if (saved && saved.refreshToken && saved.user) this.state = saved;
    } catch {
      this.state = null;
    }
  }

  get loggedIn() { return this.state !== null; }
  get user() { return this.state ? this.state.user : null; }
  get role() { return this.state ? this.state.user.role : null; }
  get isTrader() { return this.role === "trader"; }
  get token() { return this.state ? this.state.accessToken : null; }
  get expired() { return !this.state || Date.now() >= this.state.expiresAt; }

  async login(username, password) {
    const body = await request("/api/auth/login", { method: "POST", body: { username, password } });
    this._store({ refreshToken: body.refreshToken, user: body.user }, body);
  }

  /** A new access token from the refresh token; concurrent callers share one request. */
  refresh() {
    if (!this.state) return Promise.reject(new ApiError(401, "not logged in"));
    if (!this.refreshing) {
      const refreshToken = this.state.refreshToken;
      this.refreshing = request("/api/auth/refresh", { method: "POST", body: { refreshToken } })
        .then((body) => {
          if (this.state && this.state.refreshToken === refreshToken) this._store(this.state, body);
          this.dispatchEvent(new Event("refreshed"));
        })
        .catch((err) => {
          if (err.status === 401) this.logout("Your session has expired; log in again.");
          else this._schedule(5_000); // the sidecar is away: try again soon
          throw err;
        })
        .finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  /** The server is the authority on the role (a downgrade applies at once): the WebSocket tells it. */
  setRole(role) {
    if (!this.state || !role || this.state.user.role === role) return;
    this.state.user = { ...this.state.user, role };
    this._save();
    this.dispatchEvent(new Event("role"));
  }

  logout(reason = "") {
    clearTimeout(this.timer);
    this.state = null;
    try { sessionStorage.removeItem(STORE_KEY); } catch { /* storage unavailable: nothing kept */ }
    this.dispatchEvent(new CustomEvent("logout", { detail: reason }));
  }

  /** An authenticated call; a 401 gets one refresh and one retry. */
  async api(path, options = {}) {
    if (this.expired && this.state) await this.refresh();
    try {
      return await request(path, { ...options, token: this.token });
    } catch (err) {
      if (err.status !== 401 || !this.state) throw err;
      await this.refresh();
      return request(path, { ...options, token: this.token });
    }
  }

  _store(base, body) {
    const ttlMs = Math.max(1, Number(body.expiresIn) || 3600) * 1000;
    this.state = { ...base, accessToken: body.accessToken, ttlMs, expiresAt: Date.now() + ttlMs };
    this._save();
    this._schedule(ttlMs - refreshLeadMs(ttlMs));
  }

  _save() {
    try { sessionStorage.setItem(STORE_KEY, JSON.stringify(this.state)); } catch { /* memory only */ }
  }

  _schedule(delayMs) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.refresh().catch(() => {}); }, Math.max(1_000, delayMs));
  }

  /** After a reload, or when a background tab wakes up late: refresh now if due. */
  resume() {
    if (!this.state) return Promise.resolve();
    const due = this.state.expiresAt - refreshLeadMs(this.state.ttlMs || 3_600_000);
    if (Date.now() >= due) return this.refresh();
    this._schedule(due - Date.now());
    return Promise.resolve();
  }
}
