// The /ws connection: reconnects by itself with capped, jittered exponential backoff and says what it is doing.
//
// States: "connecting" (socket opening), "connected" (the server's `connection` message arrived),
// "reconnecting" (waiting before the next try), "offline" (stopped: logged out).
// Every time it becomes connected it fires "connected", so the page can catch up from REST
// on what the socket could not deliver while it was down.

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 10_000;
const PING_EVERY_MS = 15_000;
const SILENT_LIMIT_MS = 40_000; // no message at all (not even a pong) for this long: the link is dead
const CLOSE_POLICY = 1008; // bad or expired token

/** Delay before try `attempt` (0-based): exponential, capped, with "equal jitter" (between half and all of it). */
export function backoffMs(attempt, base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS, random = Math.random) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export class Live extends EventTarget {
  /**
   * @param {() => string|null} token  the current access token
   * @param {() => Promise<void>} renewToken  called after the server refused the token (close 1008)
   */
  constructor(token, renewToken) {
    super();
    this.token = token;
    this.renewToken = renewToken;
    this.ws = null;
    this.state = "offline";
    this.attempt = 0;
    this.retryTimer = 0;
    this.pingTimer = 0;
    this.lastMessageAt = 0;
    this.retryAt = 0;
    this.running = false;
    this.connections = 0;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this._open();
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "logged out");
    this._setState("offline");
  }

  /** Skip the wait (the browser came back online, or the tab became visible). */
  retryNow() {
    if (this.running && this.state === "reconnecting") {
      clearTimeout(this.retryTimer);
      this._open();
    }
  }

  /** Hand a refreshed access token to the open socket, which the server re-checks every few seconds:
   *  without it the socket is closed (1008) when the token it connected with expires. */
  reauth() {
    const token = this.token();
    if (token) this.send({ type: "auth", token });
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  _open() {
    const token = this.token();
    if (!token) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
    this.ws = ws;
    this.openedWith = token;
    this._setState("connecting");
    ws.onmessage = (event) => this._onMessage(ws, event);
    ws.onclose = (event) => this._onClose(ws, event);
    ws.onerror = () => {}; // onclose follows and handles it
  }

  _onMessage(ws, event) {
    if (ws !== this.ws) return;
    this.lastMessageAt = Date.now();
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== "string") return;
    if (msg.type === "connection") {
      this.attempt = 0;
      this.connections += 1;
      this._setState("connected");
      this._startPings(ws);
      if (this.token() !== this.openedWith) this.reauth(); // refreshed while it was connecting
      this.dispatchEvent(new CustomEvent("connected", { detail: msg.data || {} }));
      return;
    }
    this.dispatchEvent(new CustomEvent("message", { detail: msg }));
  }

  _startPings(ws) {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (ws !== this.ws) return;
      if (Date.now() - this.lastMessageAt > SILENT_LIMIT_MS) {
        ws.close(4000, "silent"); // onclose reconnects
        return;
      }
      this.send({ type: "ping", timestamp: Date.now() });
    }, PING_EVERY_MS);
  }

  async _onClose(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearInterval(this.pingTimer);
    if (!this.running) return;
    if (event.code === CLOSE_POLICY) {
      try {
        await this.renewToken();
      } catch {
        // logged out, or the sidecar is away: the backoff below covers both
      }
      if (!this.running) return;
    }
    const delay = backoffMs(this.attempt);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this._setState("reconnecting");
    this.retryTimer = setTimeout(() => this._open(), delay);
  }

  _setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, attempt: this.attempt, retryAt: this.retryAt } }));
  }
}
