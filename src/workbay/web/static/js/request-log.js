/* The client-side request log (UI-6): every request this browser's pages send (htmx), with the
   answer's status and error, kept in localStorage (the newest 3000).  Secrets are never kept. */
(function () {
  "use strict";
  const KEY = "workbay:request-log";
  const LIMIT = 3000;
  const SECRET = /pass|otp|secret|privkey|token/i;

  function read() {
    try { const items = JSON.parse(localStorage.getItem(KEY) || "[]"); return Array.isArray(items) ? items : []; } catch (_) { return []; }
  }
  function write(items) {
    try { localStorage.setItem(KEY, JSON.stringify(items.slice(0, LIMIT))); } catch (_) { /* storage full: drop the log */ }
  }
  function params(detail) {
    const p = detail.requestConfig?.parameters;
    if (!p) return "";
    const entries = p instanceof FormData ? [...p.entries()] : Object.entries(p);
    const kept = entries.filter(([k]) => !SECRET.test(k) && k !== "csrf_token").map(([k, v]) => [k, typeof v === "string" ? v.slice(0, 200) : "…"]);
    return kept.length ? JSON.stringify(Object.fromEntries(kept)) : "";
  }
  function header(xhr, name) {
    const v = xhr.getResponseHeader(name);
    try { return v ? decodeURIComponent(v) : ""; } catch (_) { return v || ""; }
  }

  function record(entry) {
    const items = read();
    items.unshift(entry);
    write(items);
  }
  window.wbRequestLog = { read, clear: () => localStorage.removeItem(KEY), record };

  document.addEventListener("htmx:afterRequest", (e) => {
    const xhr = e.detail.xhr;
    if (!xhr) return;
    const status = xhr.status;
    let title = header(xhr, "X-Error-Title");
    let message = header(xhr, "X-Error-Message");
    let type = "";
    const trigger = xhr.getResponseHeader("HX-Trigger");
    if (trigger && status >= 400) {
      try { const t = JSON.parse(trigger)["wb:toast"]; if (t && !title) title = t.message; } catch (_) { /* not JSON */ }
    }
    if (status === 0) { title = "Network error"; }
    const isError = status === 0 || status >= 400 || Boolean(title);
    if (isError && !type) type = status >= 500 ? "server" : status === 0 ? "network" : "request";
    record({
      at: new Date().toISOString(), status: status, statusText: xhr.statusText || "", error: isError,
      title: title, message: message, type: isError ? type : "",
      method: (e.detail.requestConfig?.verb || "get").toUpperCase(),
      url: new URL(e.detail.pathInfo?.finalRequestPath || e.detail.pathInfo?.requestPath || "", location.href).href,
      params: params(e.detail),
    });
  });
})();
